//! A YAML document as a tree whose every node knows where it is (line and column), for walking
//! pipelines whose shape is only known while walking them.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_saphyr::Spanned;

/// A node and where it starts.
pub type Node = Spanned<Tree>;

#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Map(Vec<(Spanned<String>, Node)>),
    Seq(Vec<Node>),
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
}

impl Tree {
    /// The value under `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Tree::Map(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar as text (`true`, `2`); `None` for a mapping, a sequence or null.
    pub fn text(&self) -> Option<String> {
        match self {
            Tree::Str(s) => Some(s.clone()),
            Tree::Bool(b) => Some(b.to_string()),
            Tree::Int(i) => Some(i.to_string()),
            Tree::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// The node as JSON, for reading it into a typed value or writing it out again.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Tree::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
            Tree::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Tree::Str(s) => Value::String(s.clone()),
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Int(i) => Value::from(*i),
            Tree::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Tree::Null => Value::Null,
        }
    }

    /// Where a key named `key` is, anywhere in this node (depth first).
    pub fn find_key(&self, key: &str) -> Option<&Spanned<String>> {
        match self {
            Tree::Map(entries) => entries.iter().find_map(|(k, v)| {
                if k.value == key {
                    Some(k)
                } else {
                    v.value.find_key(key)
                }
            }),
            Tree::Seq(items) => items.iter().find_map(|i| i.value.find_key(key)),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TreeVisitor;
        impl<'de> Visitor<'de> for TreeVisitor {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("YAML")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
                Ok(Tree::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
                Ok(Tree::Str(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
                Ok(Tree::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
                Ok(i64::try_from(v).map_or(Tree::Float(v as f64), Tree::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
                Ok(Tree::Float(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
                Tree::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Tree::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Node>()?;
                    entries.push((key, value));
                }
                Ok(Tree::Map(entries))
            }
        }
        d.deserialize_any(TreeVisitor)
    }
}

/// Written out as it was read, keys in their order.
impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&k.value, &v.value)?;
                }
                map.end()
            }
            Tree::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&item.value)?;
                }
                seq.end()
            }
            Tree::Str(v) => s.serialize_str(v),
            Tree::Bool(v) => s.serialize_bool(*v),
            Tree::Int(v) => s.serialize_i64(*v),
            Tree::Float(v) => s.serialize_f64(*v),
            Tree::Null => s.serialize_unit(),
        }
    }
}
