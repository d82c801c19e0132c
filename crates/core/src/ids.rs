//! The service's ids, each its own type: an account's id, the public ID people type and see,
//! a group's id, and a conversation (with a person or a group). A public ID such as
//! `bob_the_2nd` is what a message or a payment goes to; passed where an account or a group
//! is meant it would name someone else, so the compiler refuses it rather than a reviewer.
//!
//! Text becomes an id in one place, the checked [`parse`](PublicId::parse) (also `FromStr` and
//! serde's `Deserialize`, so what a page or a command line sends is checked on the way in)
//! and a malformed one is a [`CoreError::Invalid`]. The service's own answers and the
//! profile's database are taken as they are (`from_service`): the service decides what its
//! ids are, and an id it once gave out must stay readable even if the rule has since changed.

use std::fmt;
use std::str::FromStr;

use switchboard_protocol::messaging::GROUP_ID_PREFIX;

use crate::error::{CoreError, Result};

/// The characters of every id the service mints and of every public ID: ASCII, so none can
/// pass for another by looking alike, and none that would change a URL path it is put in.
fn id_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn invalid(what: &str, s: &str, rule: &str) -> CoreError {
    CoreError::Invalid(format!("{s:?} is not {what}: {rule}"))
}

fn is_group(s: &str) -> bool {
    s.get(..GROUP_ID_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(GROUP_ID_PREFIX))
}

macro_rules! string_id {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub struct $name(String);

        impl $name {
            /// As the service gave it (an answer, or the profile's own database): unchecked.
            pub(crate) fn from_service(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id! {
    /// An account's id on its service (`acc_…`): never typed by a person, only kept from the
    /// service's answer at sign-in.
    AccountId
}

string_id! {
    /// A public ID (`bob_the_2nd`): what people type and see, and what a message, a transfer
    /// or a contact request goes to. A letter, then ASCII letters, digits, `_` and `-`; never
    /// `g_…`, which names a group. How long one may be is the service's rule, not repeated here.
    PublicId
}

string_id! {
    /// A group's id (`g_…`), as the service made it.
    GroupId
}

impl AccountId {
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || !id_chars(s) {
            return Err(invalid(
                "an account id",
                s,
                "ASCII letters, digits, _ and - only",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl PublicId {
    pub fn parse(s: &str) -> Result<Self> {
        let rule = "a public ID starts with a letter and holds only ASCII letters, digits, _ and -";
        if !s.starts_with(|c: char| c.is_ascii_alphabetic()) || !id_chars(s) {
            return Err(invalid("a public ID", s, rule));
        }
        if is_group(s) {
            return Err(invalid(
                "a public ID",
                s,
                "ids starting with g_ name groups, not people",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl GroupId {
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix(GROUP_ID_PREFIX) {
            Some(rest) if !rest.is_empty() && id_chars(rest) => Ok(Self(s.to_string())),
            _ => Err(invalid(
                "a group id",
                s,
                "g_ followed by ASCII letters, digits, _ and -",
            )),
        }
    }
}

/// A conversation, and so where a message or a red envelope goes: a person, by public ID, or
/// a group, by id. The service tells them apart by the group prefix (no public ID has it), and
/// so does this, once, in [`parse`](Self::parse). On the wire and in the UI it is the bare id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub enum ConversationId {
    Direct(PublicId),
    Group(GroupId),
}

impl ConversationId {
    /// A group id if it has the group prefix, else a public ID; either is checked.
    pub fn parse(s: &str) -> Result<Self> {
        if is_group(s) {
            GroupId::parse(s).map(Self::Group)
        } else {
            PublicId::parse(s).map(Self::Direct)
        }
    }

    /// As the service or the profile's database has it: told apart by the prefix, unchecked.
    pub(crate) fn from_service(id: impl Into<String>) -> Self {
        let id = id.into();
        if id.starts_with(GROUP_ID_PREFIX) {
            Self::Group(GroupId::from_service(id))
        } else {
            Self::Direct(PublicId::from_service(id))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Direct(id) => id.as_str(),
            Self::Group(id) => id.as_str(),
        }
    }

    pub fn into_string(self) -> String {
        match self {
            Self::Direct(id) => id.into_string(),
            Self::Group(id) => id.into_string(),
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, Self::Group(_))
    }
}

impl From<PublicId> for ConversationId {
    fn from(id: PublicId) -> Self {
        Self::Direct(id)
    }
}

impl From<GroupId> for ConversationId {
    fn from(id: GroupId) -> Self {
        Self::Group(id)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversationId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl PartialEq<str> for ConversationId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ConversationId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ConversationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ConversationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl sqlx::Type<sqlx::Sqlite> for ConversationId {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }

    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for ConversationId {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self::from_service(<String as sqlx::Decode<
            'r,
            sqlx::Sqlite,
        >>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

    use super::*;

    #[test]
    fn each_id_accepts_its_own_shape_and_refuses_the_others() {
        assert_eq!(PublicId::parse("bob_the_2nd").unwrap(), "bob_the_2nd");
        assert_eq!(GroupId::parse("g_team01").unwrap(), "g_team01");
        assert_eq!(AccountId::parse("acc_x7q").unwrap(), "acc_x7q");
        for (bad, why) in [
            ("", "empty"),
            ("9lives", "a digit first"),
            ("bob smith", "a space"),
            ("bob/../x", "a path"),
            ("böb", "not ASCII"),
            ("g_team01", "a group id is no public ID"),
            ("G_team01", "nor in capitals"),
        ] {
            let e = PublicId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid", "{bad:?} ({why})");
        }
        for bad in ["bob_the_2nd", "g_", "g_a b", "g_x/y", "team"] {
            let e = GroupId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid", "{bad:?} is no group id");
        }
        assert!(AccountId::parse("acc x").is_err());
    }

    #[test]
    fn a_conversation_is_a_group_exactly_when_it_has_the_group_prefix() {
        assert_eq!(
            ConversationId::parse("g_team").unwrap(),
            ConversationId::Group(GroupId::parse("g_team").unwrap())
        );
        assert_eq!(
            ConversationId::parse("gary_01").unwrap(),
            ConversationId::Direct(PublicId::parse("gary_01").unwrap()),
            "a public ID that merely starts with g is a person"
        );
        assert_eq!(
            ConversationId::parse("g_").unwrap_err().code(),
            "invalid",
            "a malformed group id is not taken for a person"
        );
    }

    #[test]
    fn ids_cross_json_as_bare_strings_and_are_checked_on_the_way_in() {
        let to = ConversationId::parse("g_team").unwrap();
        assert_eq!(serde_json::to_string(&to).unwrap(), r#""g_team""#);
        assert_eq!(
            serde_json::from_str::<ConversationId>(r#""bob_the_2nd""#).unwrap(),
            ConversationId::Direct(PublicId::parse("bob_the_2nd").unwrap())
        );
        assert!(serde_json::from_str::<GroupId>(r#""bob_the_2nd""#).is_err());
        assert!(serde_json::from_str::<PublicId>(r#""g_team""#).is_err());
        let id = PublicId::parse("bob_the_2nd").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""bob_the_2nd""#);
    }
}
