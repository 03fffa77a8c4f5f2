//! The callback events WeCom sends about external contacts, customer groups and tags, parsed
//! from their decrypted XML.

use quick_xml::Reader;
use quick_xml::events::Event as Xml;
use serde::{Deserialize, Serialize};

/// How long a welcome_code may be used after the add (WeCom: 20 s, once).
pub const WELCOME_CODE_TTL_MS: i64 = 20_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("XML: {0}")]
    Xml(String),
    #[error("XML declares a DOCTYPE or entities, which callbacks never do")]
    Doctype,
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The leaf elements of a WeCom XML document in document order, as (name, text). WeCom's
/// messages are flat apart from lists (`MemChangeList/Item`), so this is all they need.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(xml: &str) -> Result<Fields, ParseError> {
        let mut r = Reader::from_str(xml);
        r.config_mut().trim_text(true);
        let mut out = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let mut text = String::new();
        loop {
            match r.read_event() {
                Ok(Xml::Start(e)) => {
                    if stack.len() > 16 {
                        return Err(ParseError::Xml("nested too deep".into()));
                    }
                    stack.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                    text.clear();
                }
                Ok(Xml::End(_)) => {
                    let name = stack
                        .pop()
                        .ok_or_else(|| ParseError::Xml("unbalanced end tag".into()))?;
                    if !text.is_empty() {
                        out.push((name, std::mem::take(&mut text)));
                    }
                }
                Ok(Xml::Empty(e)) => {
                    out.push((
                        String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                        String::new(),
                    ));
                }
                Ok(Xml::Text(t)) => {
                    let v = t.unescape().map_err(|e| ParseError::Xml(e.to_string()))?;
                    text.push_str(&v);
                }
                Ok(Xml::CData(c)) => {
                    let v = std::str::from_utf8(&c)
                        .map_err(|_| ParseError::Xml("CDATA is not UTF-8".into()))?;
                    text.push_str(v);
                }
                Ok(Xml::DocType(_)) => return Err(ParseError::Doctype),
                Ok(Xml::Eof) => break,
                Ok(_) => {}
                Err(e) => return Err(ParseError::Xml(e.to_string())),
            }
        }
        if !stack.is_empty() {
            return Err(ParseError::Xml("unclosed element".into()));
        }
        Ok(Fields(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn need(&self, name: &'static str) -> Result<String, ParseError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(ParseError::Missing(name)),
        }
    }

    fn int(&self, name: &'static str) -> Result<Option<i64>, ParseError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ParseError::Invalid {
                field: name,
                reason: format!("{v:?} is not a whole number"),
            }),
        }
    }
}

/// Who ended a contact relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedBy {
    /// `del_external_contact`: the guide deleted the customer.
    Guide,
    /// `del_follow_user`: the customer deleted the guide.
    Customer,
}

impl DeletedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedBy::Guide => "guide",
            DeletedBy::Customer => "customer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallbackEvent {
    /// `add_external_contact` (or `add_half_external_contact`: the customer added the guide, who
    /// has not accepted yet).
    ContactAdded {
        userid: String,
        external_userid: String,
        state: Option<String>,
        welcome_code: Option<String>,
        half: bool,
    },
    ContactEdited {
        userid: String,
        external_userid: String,
    },
    ContactDeleted {
        userid: String,
        external_userid: String,
        by: DeletedBy,
    },
    TransferFailed {
        userid: String,
        external_userid: String,
        reason: String,
    },
    ChatCreated {
        chat_id: String,
    },
    /// `update`: `detail` is add_member, del_member, change_owner, change_name, change_notice.
    ChatUpdated {
        chat_id: String,
        detail: String,
        join_scene: Option<i64>,
        quit_scene: Option<i64>,
        /// `MemChangeList/Item`: the members who joined or left (empty when WeCom omits it).
        members: Vec<String>,
    },
    ChatDismissed {
        chat_id: String,
    },
    /// `change_external_tag`: a corp tag or tag group was created, updated or deleted.
    TagChanged {
        id: String,
        tag_type: String,
        change_type: String,
    },
    /// Events Siyu does not act on; recorded and acknowledged.
    Other {
        event: String,
        change_type: String,
    },
}

impl CallbackEvent {
    /// The name the inbox files an event under (`contact_added`, `chat_updated`, …).
    pub fn kind(&self) -> String {
        match self {
            CallbackEvent::ContactAdded { .. } => "contact_added".into(),
            CallbackEvent::ContactEdited { .. } => "contact_edited".into(),
            CallbackEvent::ContactDeleted { .. } => "contact_deleted".into(),
            CallbackEvent::TransferFailed { .. } => "transfer_failed".into(),
            CallbackEvent::ChatCreated { .. } => "chat_created".into(),
            CallbackEvent::ChatUpdated { .. } => "chat_updated".into(),
            CallbackEvent::ChatDismissed { .. } => "chat_dismissed".into(),
            CallbackEvent::TagChanged { .. } => "tag_changed".into(),
            CallbackEvent::Other { event, change_type } => format!("{event}:{change_type}"),
        }
    }

    /// Welcome messages go first: their code expires 20 s after the add.
    pub fn is_urgent(&self) -> bool {
        matches!(
            self,
            CallbackEvent::ContactAdded {
                welcome_code: Some(_),
                ..
            }
        )
    }
}

/// A parsed callback: the corp it was addressed to, WeCom's time of it, and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub corp_id: String,
    /// Seconds since the epoch, as WeCom writes `CreateTime`.
    pub create_time: i64,
    pub event: CallbackEvent,
}

/// Parses a decrypted callback message.
pub fn parse(xml: &str) -> Result<Envelope, ParseError> {
    let f = Fields::parse(xml)?;
    let corp_id = f.need("ToUserName")?;
    let create_time = f
        .int("CreateTime")?
        .ok_or(ParseError::Missing("CreateTime"))?;
    let event = f.need("Event")?;
    let change = f.get("ChangeType").unwrap_or("").to_owned();
    let ev = match (event.as_str(), change.as_str()) {
        ("change_external_contact", "add_external_contact" | "add_half_external_contact") => {
            CallbackEvent::ContactAdded {
                userid: f.need("UserID")?,
                external_userid: f.need("ExternalUserID")?,
                state: f.get("State").filter(|s| !s.is_empty()).map(str::to_owned),
                welcome_code: f
                    .get("WelcomeCode")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                half: change == "add_half_external_contact",
            }
        }
        ("change_external_contact", "edit_external_contact") => CallbackEvent::ContactEdited {
            userid: f.need("UserID")?,
            external_userid: f.need("ExternalUserID")?,
        },
        ("change_external_contact", "del_external_contact" | "del_follow_user") => {
            CallbackEvent::ContactDeleted {
                userid: f.need("UserID")?,
                external_userid: f.need("ExternalUserID")?,
                by: if change == "del_follow_user" {
                    DeletedBy::Customer
                } else {
                    DeletedBy::Guide
                },
            }
        }
        ("change_external_contact", "transfer_fail") => CallbackEvent::TransferFailed {
            userid: f.need("UserID")?,
            external_userid: f.need("ExternalUserID")?,
            reason: f.get("FailReason").unwrap_or("").to_owned(),
        },
        ("change_external_chat", "create") => CallbackEvent::ChatCreated {
            chat_id: f.need("ChatId")?,
        },
        ("change_external_chat", "update") => CallbackEvent::ChatUpdated {
            chat_id: f.need("ChatId")?,
            detail: f.need("UpdateDetail")?,
            join_scene: f.int("JoinScene")?,
            quit_scene: f.int("QuitScene")?,
            members: f.all("Item"),
        },
        ("change_external_chat", "dismiss") => CallbackEvent::ChatDismissed {
            chat_id: f.need("ChatId")?,
        },
        ("change_external_tag", _) => CallbackEvent::TagChanged {
            id: f.need("Id")?,
            tag_type: f.get("TagType").unwrap_or("tag").to_owned(),
            change_type: change,
        },
        _ => CallbackEvent::Other {
            event,
            change_type: change,
        },
    };
    Ok(Envelope {
        corp_id,
        create_time,
        event: ev,
    })
}

/// The XML WeCom sends for an event (used by the sandbox, the demo and tests).
pub fn to_xml(e: &Envelope) -> String {
    fn tag(out: &mut String, name: &str, v: &str) {
        out.push_str(&format!("<{name}><![CDATA[{v}]]></{name}>"));
    }
    let mut x = String::from("<xml>");
    tag(&mut x, "ToUserName", &e.corp_id);
    tag(&mut x, "FromUserName", "sys");
    x.push_str(&format!("<CreateTime>{}</CreateTime>", e.create_time));
    tag(&mut x, "MsgType", "event");
    let contact = |x: &mut String, change: &str, userid: &str, ext: &str| {
        tag(x, "Event", "change_external_contact");
        tag(x, "ChangeType", change);
        tag(x, "UserID", userid);
        tag(x, "ExternalUserID", ext);
    };
    match &e.event {
        CallbackEvent::ContactAdded {
            userid,
            external_userid,
            state,
            welcome_code,
            half,
        } => {
            let change = if *half {
                "add_half_external_contact"
            } else {
                "add_external_contact"
            };
            contact(&mut x, change, userid, external_userid);
            if let Some(s) = state {
                tag(&mut x, "State", s);
            }
            if let Some(w) = welcome_code {
                tag(&mut x, "WelcomeCode", w);
            }
        }
        CallbackEvent::ContactEdited {
            userid,
            external_userid,
        } => contact(&mut x, "edit_external_contact", userid, external_userid),
        CallbackEvent::ContactDeleted {
            userid,
            external_userid,
            by,
        } => {
            let change = match by {
                DeletedBy::Guide => "del_external_contact",
                DeletedBy::Customer => "del_follow_user",
            };
            contact(&mut x, change, userid, external_userid);
        }
        CallbackEvent::TransferFailed {
            userid,
            external_userid,
            reason,
        } => {
            contact(&mut x, "transfer_fail", userid, external_userid);
            tag(&mut x, "FailReason", reason);
        }
        CallbackEvent::ChatCreated { chat_id } => {
            tag(&mut x, "Event", "change_external_chat");
            tag(&mut x, "ChatId", chat_id);
            tag(&mut x, "ChangeType", "create");
        }
        CallbackEvent::ChatUpdated {
            chat_id,
            detail,
            join_scene,
            quit_scene,
            members,
        } => {
            tag(&mut x, "Event", "change_external_chat");
            tag(&mut x, "ChatId", chat_id);
            tag(&mut x, "ChangeType", "update");
            tag(&mut x, "UpdateDetail", detail);
            if let Some(j) = join_scene {
                x.push_str(&format!("<JoinScene>{j}</JoinScene>"));
            }
            if let Some(q) = quit_scene {
                x.push_str(&format!("<QuitScene>{q}</QuitScene>"));
            }
            x.push_str(&format!("<MemChangeCnt>{}</MemChangeCnt>", members.len()));
            if !members.is_empty() {
                x.push_str("<MemChangeList>");
                for m in members {
                    tag(&mut x, "Item", m);
                }
                x.push_str("</MemChangeList>");
            }
        }
        CallbackEvent::ChatDismissed { chat_id } => {
            tag(&mut x, "Event", "change_external_chat");
            tag(&mut x, "ChatId", chat_id);
            tag(&mut x, "ChangeType", "dismiss");
        }
        CallbackEvent::TagChanged {
            id,
            tag_type,
            change_type,
        } => {
            tag(&mut x, "Event", "change_external_tag");
            tag(&mut x, "Id", id);
            tag(&mut x, "TagType", tag_type);
            tag(&mut x, "ChangeType", change_type);
        }
        CallbackEvent::Other { event, change_type } => {
            tag(&mut x, "Event", event);
            tag(&mut x, "ChangeType", change_type);
        }
    }
    x.push_str("</xml>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_add_external_contact_parses() {
        // The example of WeCom's "添加企业客户事件" page.
        let xml = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
            <CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>\
            <ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
            <ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID><State><![CDATA[teststate]]></State>\
            <WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>";
        let e = parse(xml).expect("parse");
        assert_eq!(e.corp_id, "toUser");
        assert_eq!(e.create_time, 1_403_610_513);
        assert_eq!(
            e.event,
            CallbackEvent::ContactAdded {
                userid: "zhangsan".into(),
                external_userid: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA".into(),
                state: Some("teststate".into()),
                welcome_code: Some("WELCOMECODE".into()),
                half: false,
            }
        );
        assert!(e.event.is_urgent());
    }

    #[test]
    fn every_event_round_trips_through_its_xml() {
        let events = vec![
            CallbackEvent::ContactDeleted {
                userid: "g".into(),
                external_userid: "wm1".into(),
                by: DeletedBy::Customer,
            },
            CallbackEvent::ChatUpdated {
                chat_id: "wr1".into(),
                detail: "add_member".into(),
                join_scene: Some(3),
                quit_scene: None,
                members: vec!["wm1".into(), "wm2".into()],
            },
            CallbackEvent::ChatDismissed {
                chat_id: "wr1".into(),
            },
            CallbackEvent::TagChanged {
                id: "et1".into(),
                tag_type: "tag".into(),
                change_type: "delete".into(),
            },
        ];
        for ev in events {
            let env = Envelope {
                corp_id: "ww1".into(),
                create_time: 1_700_000_000,
                event: ev,
            };
            assert_eq!(parse(&to_xml(&env)).expect("parse"), env);
        }
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("<xml><ToUserName>a</ToUserName>").is_err());
        assert!(matches!(
            parse("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml/>"),
            Err(ParseError::Doctype)
        ));
        assert_eq!(
            parse("<xml><ToUserName>a</ToUserName><CreateTime>x</CreateTime></xml>"),
            Err(ParseError::Invalid {
                field: "CreateTime",
                reason: "\"x\" is not a whole number".into()
            })
        );
    }
}
