//! Reading structs and unit enums with serde but without its derive, whose proc-macro stack
//! (syn, quote, serde_derive) was the largest part of xtask's cold compile.
//!
//! A struct lists its keys with [`table!`](crate::table) (which field each fills, which are
//! required, whether others are refused), and starts from `Default` for the keys left out. The
//! `Deserialize` it gets goes through `Visitor::visit_map` as derived code does, so the errors
//! are the same: toml still reports the file's line and column (`unknown field `colour`,
//! expected one of …`, `missing field `path``, `invalid type: …`), serde_json its own.

use std::marker::PhantomData;

pub use serde;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A struct read key by key from a TOML table or a JSON object. `Default` is the value before
/// any key is read: every optional field at its default.
pub trait Table: Default {
    /// The type's name, as errors show it (`struct Check`).
    const NAME: &'static str;
    /// The keys, in declaration order (errors list them).
    const FIELDS: &'static [&'static str];
    /// The keys that must be present, in declaration order (the first missing one is named).
    const REQUIRED: &'static [&'static str];
    /// Whether a key outside `FIELDS` is an error (serde's `deny_unknown_fields`) or ignored.
    const DENY_UNKNOWN: bool;

    /// Reads the value of `key` into its field; a key the type ignores goes to [`skip`].
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// Implements `Deserialize` for [`Table`] types.
#[macro_export]
macro_rules! deserialize_table {
    ($($ty:ty),+ $(,)?) => {$(
        impl<'de> $crate::de::serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::de::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                $crate::de::table(deserializer)
            }
        }
    )+};
}

/// Implements [`Table`] and `Deserialize` for a struct whose keys each go to one field:
/// `table!(Row, deny_unknown: true, required: ["name"], { "name" => name, "min-pages" =>
/// min_pages })`.
#[macro_export]
macro_rules! table {
    ($ty:ident, deny_unknown: $deny:literal, required: [$($required:literal),* $(,)?],
     { $($key:literal => $field:ident),+ $(,)? }) => {
        impl $crate::de::Table for $ty {
            const NAME: &'static str = stringify!($ty);
            const FIELDS: &'static [&'static str] = &[$($key),+];
            const REQUIRED: &'static [&'static str] = &[$($required),*];
            const DENY_UNKNOWN: bool = $deny;

            fn field<'de, A: $crate::de::serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = map.next_value()?,)+
                    _ => $crate::de::skip(map)?,
                }
                Ok(())
            }
        }
        $crate::deserialize_table!($ty);
    };
}

/// Reads a [`Table`] from `deserializer`.
pub fn table<'de, T: Table, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_struct(T::NAME, T::FIELDS, TableVisitor(PhantomData))
}

/// Reads and drops the value of a key the type ignores.
pub fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(drop)
}

struct TableVisitor<T>(PhantomData<T>);

impl<'de, T: Table> Visitor<'de> for TableVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "struct {}", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut value = T::default();
        let mut seen = Vec::new();
        let key = Key {
            fields: T::FIELDS,
            deny_unknown: T::DENY_UNKNOWN,
        };
        while let Some(name) = map.next_key_seed(key)? {
            value.field(&name, &mut map)?;
            seen.push(name);
        }
        match T::REQUIRED.iter().find(|r| !seen.iter().any(|s| s == *r)) {
            Some(missing) => Err(de::Error::missing_field(missing)),
            None => Ok(value),
        }
    }
}

/// A key, refused while it is read when the type denies unknown keys: the error then carries
/// the key's position, as with derived code.
#[derive(Clone, Copy)]
struct Key {
    fields: &'static [&'static str],
    deny_unknown: bool,
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if self.deny_unknown && !self.fields.contains(&key) {
            return Err(E::unknown_field(key, self.fields));
        }
        Ok(key.to_owned())
    }
}

/// Reads a unit variant spelled as one of `names`, as its index; other text is an
/// `unknown variant` error listing them.
pub fn variant<'de, D: Deserializer<'de>>(
    deserializer: D,
    names: &'static [&'static str],
) -> Result<usize, D::Error> {
    deserializer.deserialize_enum("", names, Variant(names))
}

struct Variant(&'static [&'static str]);

impl<'de> Visitor<'de> for Variant {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| E::unknown_variant(name, self.0))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<usize, A::Error> {
        use de::VariantAccess;
        let (index, variant) = data.variant_seed(self)?;
        variant.unit_variant()?;
        Ok(index)
    }
}

impl<'de> DeserializeSeed<'de> for Variant {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Point {
        x: i64,
        label: Option<String>,
    }

    crate::table!(Point, deny_unknown: true, required: ["x"], { "x" => x, "label" => label });

    #[test]
    fn toml_errors_keep_their_position() {
        let point: Point = toml::from_str("x = 3\nlabel = \"a\"\n").unwrap();
        assert_eq!((point.x, point.label.as_deref()), (3, Some("a")));
        let err = toml::from_str::<Point>("x = 3\ncolour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(
            err.contains("unknown field `colour`, expected `x` or `label`"),
            "{err}"
        );
        let err = toml::from_str::<Point>("label = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `x`"), "{err}");
        let err = toml::from_str::<Point>("x = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("expected i64"),
            "{err}"
        );
    }

    #[test]
    fn json_reads_the_same_way() {
        let point: Point = serde_json::from_str(r#"{"x": 1}"#).unwrap();
        assert_eq!((point.x, point.label), (1, None));
        let err = serde_json::from_str::<Point>(r#"{"y": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown field `y`"), "{err}");
    }

    #[test]
    fn variants_are_named_or_listed() {
        struct Mode(usize);
        impl<'de> serde::Deserialize<'de> for Mode {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                variant(d, &["on", "off"]).map(Mode)
            }
        }
        assert_eq!(serde_json::from_str::<Mode>("\"off\"").unwrap().0, 1);
        let err = toml::from_str::<toml::Table>("m = \"x\"")
            .unwrap()
            .get("m")
            .cloned()
            .unwrap()
            .try_into::<Mode>()
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unknown variant `x`, expected `on` or `off`"),
            "{err}"
        );
    }
}
