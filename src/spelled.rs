//! `spelled!`: an enum whose every value has one spelling, used alike by
//! serde (the API, the WebSockets, stored JSON), the store's columns, the CLI
//! and messages. `as_str`, `parse`, `Display`, `Serialize` and `Deserialize`
//! all come from the one list, so a value cannot be spelled two ways.

macro_rules! spelled {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                $name::parse(&text).ok_or_else(|| serde::de::Error::unknown_variant(&text, &[$($text,)*]))
            }
        }
    };
}

pub(crate) use spelled;

#[cfg(test)]
mod tests {
    use crate::trace::{LogStream, SpanKind, Status};

    #[test]
    fn every_value_reads_back_from_its_one_spelling() {
        for status in Status::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<Status>(json).unwrap(), *status);
            assert_eq!(Status::parse(&status.to_string()), Some(*status));
        }
        assert_eq!(SpanKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(), ["flow", "step", "rpc", "subflow"]);
        assert_eq!(LogStream::parse("log"), Some(LogStream::Log));
        assert_eq!(Status::parse("Ok"), None, "one spelling only");
        let unknown = serde_json::from_str::<Status>("\"done\"").unwrap_err().to_string();
        assert!(unknown.contains("unknown variant `done`"), "{unknown}");
    }
}
