//! Statuses and kinds stored as text: each variant's word is what the column holds, what the API
//! writes in JSON and what the SQL compares, so the enum changes no stored row.

/// A text the enum has no variant for (a caller's typo, a row written by a newer version): it
/// says which words are known, so that the caller can correct it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not one of {}", words.join(", "))]
pub struct UnknownText {
    pub text: String,
    pub words: &'static [&'static str],
}

/// Declares an enum stored as text: `as_str`, `FromStr`, `Display`, JSON as the word, reading
/// from a TEXT column on either backend, and binding as text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The words of every variant, in the same order.
            pub const WORDS: &'static [&'static str] = &[$($text),+];

            /// The word stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::platform::text_enum::UnknownText;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::platform::text_enum::UnknownText {
                        text: s.to_string(),
                        words: Self::WORDS,
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $name
        where
            String: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as ::sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as ::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $name
        where
            String: ::sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as ::sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let s = <String as ::sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(s.parse::<$name>()?)
            }
        }

        impl From<$name> for $crate::platform::db::Value {
            fn from(v: $name) -> Self {
                $crate::platform::db::Value::from(v.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use crate::platform::db::{Db, Value, sql};

    text_enum! {
        /// A test's statuses.
        pub enum Light {
            Red = "red",
            /// Two words, as stored.
            AmberFlashing = "amber_flashing",
        }
    }

    #[test]
    fn each_word_reads_back_and_others_are_refused() {
        for l in Light::ALL {
            assert_eq!(l.as_str().parse::<Light>(), Ok(*l));
            assert_eq!(serde_json::to_value(l).expect("json"), l.as_str());
            let back: Light = serde_json::from_value(serde_json::json!(l.as_str())).expect("json");
            assert_eq!(back, *l);
        }
        let e = "green".parse::<Light>().expect_err("unknown");
        assert_eq!(e.to_string(), "\"green\" is not one of red, amber_flashing");
        assert!(serde_json::from_value::<Light>(serde_json::json!("Red")).is_err());
        assert!(
            matches!(Value::from(Light::AmberFlashing), Value::Text(Some(t)) if &*t == "amber_flashing")
        );
    }

    #[tokio::test]
    async fn a_text_column_reads_as_the_enum() {
        let db = Db::connect("sqlite::memory:", &Default::default())
            .await
            .expect("db");
        let (l,): (Light,) = db
            .fetch_one(&sql("SELECT $1").bind(Light::AmberFlashing))
            .await
            .expect("read");
        assert_eq!(l, Light::AmberFlashing);
        let bad = db
            .fetch_one::<(Light,)>(&sql("SELECT 'green'"))
            .await
            .expect_err("unknown text");
        assert!(bad.to_string().contains("green"), "{bad}");
    }
}
