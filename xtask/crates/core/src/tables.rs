//! Structs read from TOML tables only. serde's derive also reads a struct from an array of its
//! values in field order (serde issue #1587), so `follow = ["/c", "c", "/items", "/id"]` or
//! `xtask = ["r"]` would be taken for a table, and a typo would become a silent default. The
//! fields that hold a derived struct name one of these functions in
//! `#[serde(deserialize_with = …)]`: the struct is then read through `visit_map` only, and an
//! array is refused with the error that names the struct (`invalid type: sequence, expected
//! struct Follow`) at the array's line and column.

use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
    value::MapAccessDeserializer,
};

/// A struct, from a table.
pub fn one<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(Table(PhantomData))
}

/// An optional struct, from a table; with `#[serde(default)]`, a missing key is `None`.
pub fn optional<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    one(deserializer).map(Some)
}

/// An array of structs, each from a table (`[[check]]`).
pub fn many<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    deserializer.deserialize_seq(Tables(PhantomData))
}

struct Table<T>(PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for Table<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // What derive's own visitor says: `struct` and the type's name without its path.
        let name = std::any::type_name::<T>();
        write!(f, "struct {}", name.rsplit("::").next().unwrap_or(name))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Table<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_map(self)
    }
}

struct Tables<T>(PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for Tables<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // What `Vec`'s own visitor says.
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Table(PhantomData))? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Point {
        x: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    struct File {
        #[serde(deserialize_with = "one")]
        origin: Point,
        #[serde(default, deserialize_with = "optional")]
        end: Option<Point>,
        #[serde(default, deserialize_with = "many")]
        point: Vec<Point>,
    }

    fn err(text: &str) -> String {
        toml::from_str::<File>(text).unwrap_err().to_string()
    }

    #[test]
    fn tables_are_read_and_arrays_refused_with_their_place() {
        let file: File = toml::from_str("origin = { x = 1 }\n[[point]]\nx = 2\n").unwrap();
        assert_eq!(
            (file.origin.x, file.end.is_none(), file.point[0].x),
            (1, true, 2)
        );
        let e = err("origin = [1]\n");
        assert!(e.contains("line 1, column 10"), "{e}");
        assert!(
            e.contains("invalid type: sequence, expected struct Point"),
            "{e}"
        );
        let e = err("origin = { x = 1 }\nend = [1]\n");
        assert!(
            e.contains("line 2, column 7") && e.contains("expected struct Point"),
            "{e}"
        );
        let e = err("origin = { x = 1 }\npoint = [[1]]\n");
        assert!(
            e.contains("line 2, column 10") && e.contains("expected struct Point"),
            "{e}"
        );
        let e = err("origin = { x = 1 }\npoint = 3\n");
        assert!(
            e.contains("invalid type: integer `3`, expected a sequence"),
            "{e}"
        );
        // Errors inside the table keep their own place.
        let e = err("origin = { x = 1, y = 2 }\n");
        assert!(
            e.contains("line 1, column 19") && e.contains("unknown field `y`"),
            "{e}"
        );
    }
}
