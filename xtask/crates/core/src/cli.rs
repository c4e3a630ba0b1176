//! The flag types' link to clap's builder API, in place of clap's derive (whose proc-macro stack,
//! syn above all, was the largest part of xtask's cold compile). `args!` declares a flag struct
//! as derive did, help in `///` doc comments and `#[arg(…)]` beside each field, and gives it a
//! `Flags` impl: the arguments it adds to a `clap::Command` and how it reads them back from the
//! `ArgMatches`. `subcommands!` does the same for an enum of subcommands. The field's type says
//! how it is parsed (`Field`): `bool` is a switch, `Option<T>` optional, `Vec<T>` repeatable, any
//! other type required unless it has a default, as with derive.

use std::{path::PathBuf, time::Duration};

use clap::{Arg, ArgAction, ArgMatches, Command, builder::ValueParser};

/// A flag struct or subcommand enum: what it adds to its command, and its value from a parse.
pub trait Flags: Sized {
    /// Adds this type's arguments (or subcommands) to `cmd`.
    fn args(cmd: Command) -> Command;
    /// Reads the values back; clap has checked them against `args`, so this cannot fail.
    fn from_matches(matches: &ArgMatches) -> Self;
}

/// A type that a flag's value parses into.
pub trait Value: Clone + Send + Sync + 'static {
    /// clap's parser for it; `None` for types without a single spelling (a `Duration` is `15m`
    /// for deploy, `3d` for preview gc), whose flags name their parser (`value_parser = …`).
    fn parser() -> Option<ValueParser>;
}

/// A flag field's type: how clap parses it and how it is read back.
pub trait Field: Sized {
    /// Sets the argument's action, value name and parser.
    fn arg(arg: Arg) -> Arg;
    /// The field's value from a parse.
    fn get(matches: &ArgMatches, id: &str) -> Self;
}

/// A value-taking argument, named in help as derive named it (the field in upper case).
fn takes<V: Value>(arg: Arg, action: ArgAction) -> Arg {
    let name = arg.get_id().as_str().to_uppercase();
    let arg = arg.action(action).value_name(name);
    match V::parser() {
        Some(parser) => arg.value_parser(parser),
        None => arg,
    }
}

impl Field for bool {
    fn arg(arg: Arg) -> Arg {
        arg.action(ArgAction::SetTrue)
    }
    fn get(matches: &ArgMatches, id: &str) -> Self {
        matches.get_flag(id)
    }
}

impl<V: Value> Field for Option<V> {
    fn arg(arg: Arg) -> Arg {
        takes::<V>(arg, ArgAction::Set)
    }
    fn get(matches: &ArgMatches, id: &str) -> Self {
        matches.get_one::<V>(id).cloned()
    }
}

impl<V: Value> Field for Vec<V> {
    fn arg(arg: Arg) -> Arg {
        takes::<V>(arg, ArgAction::Append)
    }
    fn get(matches: &ArgMatches, id: &str) -> Self {
        matches
            .get_many::<V>(id)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// `Field::arg` of a required value (`args!` lifts `required` when the flag has a default).
pub fn required<V: Value>(arg: Arg) -> Arg {
    takes::<V>(arg, ArgAction::Set).required(true)
}

/// `Field::get` of a required or defaulted value.
pub fn get_required<V: Value>(matches: &ArgMatches, id: &str) -> V {
    matches
        .get_one::<V>(id)
        .cloned()
        .unwrap_or_else(|| panic!("clap requires `{id}` or gives its default"))
}

/// Makes a type a flag value: its parser (none: its flags name one), and `Field` for a field of
/// exactly that type (required unless defaulted). `Option<T>` and `Vec<T>` fields come with
/// `Value`.
#[macro_export]
macro_rules! value {
    ($ty:ty) => {
        $crate::value!($ty, None::<clap::builder::ValueParser>);
    };
    ($ty:ty, $parser:expr) => {
        impl $crate::cli::Value for $ty {
            fn parser() -> Option<clap::builder::ValueParser> {
                $parser.map(Into::into)
            }
        }
        impl $crate::cli::Field for $ty {
            fn arg(arg: clap::Arg) -> clap::Arg {
                $crate::cli::required::<$ty>(arg)
            }
            fn get(matches: &clap::ArgMatches, id: &str) -> Self {
                $crate::cli::get_required(matches, id)
            }
        }
    };
}

value!(String, Some(clap::value_parser!(String)));
value!(PathBuf, Some(clap::value_parser!(PathBuf)));
value!(u32, Some(clap::value_parser!(u32)));
value!(u64, Some(clap::value_parser!(u64)));
value!(usize, Some(clap::value_parser!(usize)));
value!(Duration);

/// Help from a doc comment, as derive made it: the lines joined, without the final period.
pub fn help(doc: &[&str]) -> String {
    let mut text = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    if text.ends_with('.') && !text.ends_with("..") {
        text.pop();
    }
    text
}

/// A field's or variant's name as typed: `dry_run` is `--dry-run`, `Blueprint` is `blueprint`.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(if c == '_' {
            '-'
        } else {
            c.to_ascii_lowercase()
        });
    }
    out
}

/// A subcommand with its about line, its arguments added by `args`.
pub fn subcommand(name: &str, doc: &[&str], args: fn(Command) -> Command) -> Command {
    args(Command::new(kebab(name))).about(help(doc))
}

/// A flag's default, as `default_value_t` wrote it: displayed, so `1_000_000` reads 1000000.
pub fn default_t(value: impl std::fmt::Display) -> String {
    value.to_string()
}

/// Declares a flag struct: each field's help in its `///` doc comment, its spelling in
/// `#[arg(…)]` (`long`, `long = "…"`, `value_name`, `default_value`, `default_value_t`,
/// `value_parser`, `requires`, `conflicts_with`, `global`, `hide`, `last`: clap's `Arg`
/// methods), and `impl Flags`.
#[macro_export]
macro_rules! args {
    (
        $(#[doc = $sdoc:expr])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:expr])*
                $(#[arg($($key:ident $(= $value:expr)?),* $(,)?)])?
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        pub struct $name {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl $crate::cli::Flags for $name {
            fn args(cmd: clap::Command) -> clap::Command {
                cmd $(.arg({
                    let arg = <$ty as $crate::cli::Field>::arg(clap::Arg::new(stringify!($field)))
                        .help($crate::cli::help(&[$($doc),*]));
                    $($(let arg = $crate::args!(@set arg, $field, $key $(= $value)?);)*)?
                    arg
                }))*
            }
            fn from_matches(_matches: &clap::ArgMatches) -> Self {
                Self {
                    $($field: <$ty as $crate::cli::Field>::get(_matches, stringify!($field)),)*
                }
            }
        }
    };
    (@set $arg:ident, $field:ident, long) => {
        $arg.long($crate::cli::kebab(stringify!($field)))
    };
    (@set $arg:ident, $field:ident, value_enum) => {
        $arg
    };
    (@set $arg:ident, $field:ident, default_value_t = $value:expr) => {
        $arg.default_value($crate::cli::default_t($value)).required(false)
    };
    (@set $arg:ident, $field:ident, default_value = $value:expr) => {
        $arg.default_value($value).required(false)
    };
    (@set $arg:ident, $field:ident, $key:ident = $value:expr) => {
        $arg.$key($value)
    };
}

/// Declares an enum of subcommands, each variant's about line in its `///` doc comment, a
/// variant either bare or holding its flags (a `Flags` type: a struct or a nested enum), and
/// `impl Flags` (a subcommand is then required); `subcommands` adds them without requiring one.
#[macro_export]
macro_rules! subcommands {
    (
        $(#[doc = $sdoc:expr])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:expr])*
                $variant:ident $(($ty:ty))?,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        pub enum $name {
            $($(#[doc = $doc])* $variant $(($ty))?,)*
        }

        impl $name {
            /// Adds the subcommands to `cmd`, without requiring one.
            pub fn subcommands(cmd: clap::Command) -> clap::Command {
                cmd $(.subcommand($crate::cli::subcommand(
                    stringify!($variant),
                    &[$($doc),*],
                    |cmd| { $(let cmd = <$ty as $crate::cli::Flags>::args(cmd);)? cmd },
                )))*
            }
        }

        impl $crate::cli::Flags for $name {
            fn args(cmd: clap::Command) -> clap::Command {
                Self::subcommands(cmd)
                    .subcommand_required(true)
                    .arg_required_else_help(true)
            }
            fn from_matches(matches: &clap::ArgMatches) -> Self {
                let (name, _sub) = matches.subcommand().expect("clap requires a subcommand");
                $(if name == $crate::cli::kebab(stringify!($variant)) {
                    return Self::$variant $((<$ty as $crate::cli::Flags>::from_matches(_sub)))?;
                })*
                unreachable!("clap knows no subcommand `{name}`")
            }
        }
    };
}
