//! A live code's QR to print. WeCom gives a picture of it, not the text it holds: the picture
//! is fetched (only from WeCom's picture hosts or the API's own base, no redirect, 2 MB, 10 s),
//! read, and drawn again by the caller at print size.

use std::time::Duration;

use super::{LiveCode, LiveCodeError};
use crate::connect::client::{WecomApi, WecomError};

/// The text WeCom's QR picture for the code holds, read from the picture itself (WeCom gives
/// a picture, not the text): what a print-size PNG or an SVG of the code encodes.
pub async fn qr_text(api: &WecomApi, code: &LiveCode) -> Result<String, LiveCodeError> {
    if code.disabled_at.is_some() {
        return Err(LiveCodeError::Stopped(code.id));
    }
    let picture = picture(api, &code.qr_code).await?;
    // Decoding is a few milliseconds of one core: off the request threads.
    let read = tokio::task::spawn_blocking(move || crate::acquire::qr::read(&picture))
        .await
        .map_err(|e| {
            LiveCodeError::Picture(code.id, crate::acquire::qr::QrError::Image(e.to_string()))
        })?;
    read.map_err(|e| LiveCodeError::Picture(code.id, e))
}

/// The picture WeCom drew for a contact way (`qr_code` of `add_contact_way`). Only from
/// WeCom's own picture hosts over https, or from the API's base (a sandbox): the address is
/// stored text, and the server must not be sent elsewhere by it. At most 2 MB.
async fn picture(api: &WecomApi, url: &str) -> Result<Vec<u8>, WecomError> {
    let path = "qr_code";
    let fail = |reason: String| WecomError::Transport {
        path: path.into(),
        reason,
    };
    if !qr_host_allowed(url, api.base()) {
        return Err(fail(format!("{url} is not a WeCom picture address")));
    }
    // A client of its own, made once, that follows no redirect: a 30x from an allowed host
    // must not carry the server anywhere else.
    static HTTP: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    let http = HTTP
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| fail(e.clone()))?;
    let mut r = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !r.status().is_success() {
        return Err(fail(format!("HTTP {}", r.status())));
    }
    const MAX: usize = 2 << 20;
    let mut out = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| fail(e.to_string()))? {
        if out.len() + chunk.len() > MAX {
            return Err(fail("the picture is larger than 2 MB".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Whether a contact way's picture may be fetched from `url`: https on port 443 of WeCom's
/// picture hosts (qpic.cn, weixin.qq.com) with no user in it, or the origin of the API's own
/// base (a sandbox). The address is parsed as the client will read it (a `\\` is a `/` there).
fn qr_host_allowed(url: &str, base: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    if let Ok(b) = reqwest::Url::parse(base)
        && !base.is_empty()
        && b.scheme() == u.scheme()
        && b.host_str() == u.host_str()
        && b.port_or_known_default() == u.port_or_known_default()
    {
        return true;
    }
    let Some(host) = u.host_str() else {
        return false;
    };
    u.scheme() == "https"
        && u.port_or_known_default() == Some(443)
        && ["qpic.cn", "weixin.qq.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_ways_picture_is_fetched_only_from_wecom() {
        let base = "https://qyapi.weixin.qq.com";
        for ok in [
            "https://wework.qpic.cn/wwpic/123/0",
            "https://p.qpic.cn/wwhead/abc/0",
            "https://open.work.weixin.qq.com/x.png",
        ] {
            assert!(qr_host_allowed(ok, base), "{ok}");
        }
        for bad in [
            "http://wework.qpic.cn/wwpic/123/0",
            "https://qpic.cn.evil.example/x",
            "https://evilqpic.cn/x",
            "https://wework.qpic.cn@169.254.169.254/",
            "https://wework.qpic.cn:8443/x",
            "https://evil.example\\.qpic.cn/x",
            "https://evil.example%2F.qpic.cn/x",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/x",
        ] {
            assert!(!qr_host_allowed(bad, base), "{bad}");
        }
        // A sandbox's own pictures, under its base.
        assert!(qr_host_allowed(
            "http://127.0.0.1:9/sandbox/qr/1",
            "http://127.0.0.1:9"
        ));
        assert!(!qr_host_allowed(
            "http://127.0.0.1:90/x",
            "http://127.0.0.1:9"
        ));
    }
}
