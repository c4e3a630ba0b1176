//! Structured logs: one JSON object per line on stderr, with a timestamp, a level and fields.
//! Values are passed in by the caller, so a secret can only reach a log by being passed.

use std::{
    io::Write,
    sync::atomic::{AtomicU8, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Writes one log line: `{"ts":…,"level":…,"msg":…, …fields}`.
pub fn log(level: Level, msg: &str, fields: Value) {
    if level as u8 > MAX_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let mut line = Map::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    line.insert("ts".into(), Value::from(now.as_millis() as u64));
    line.insert("level".into(), Value::from(level.name()));
    line.insert("msg".into(), Value::from(msg));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    // One write per line keeps concurrent lines whole.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub fn info(msg: &str, fields: Value) {
    log(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: Value) {
    log(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: Value) {
    log(Level::Error, msg, fields);
}
