//! Running child processes where xshell's run/read is not enough: with a deadline, with output
//! streamed to stderr and a log file at once, or detached in the background.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// How often a deadline-bounded wait looks at its condition again.
const POLL: Duration = Duration::from_millis(50);

/// Runs `cmd` to completion, capturing its output; kills it when `timeout` passes.
/// `input`, when given, is written to the child's stdin (the way secrets reach a command).
pub fn output_with_timeout(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let program = program_name(&cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{program}`"))?;
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        stdin
            .write_all(bytes)
            .with_context(|| format!("writing to `{program}`'s stdin"))?;
    }
    let stdout = drain(child.stdout.take().expect("stdout was piped"));
    let stderr = drain(child.stderr.take().expect("stderr was piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{program}` did not finish within {:.1}s",
                timeout.as_secs_f64()
            );
        }
        thread::sleep(POLL.min(timeout / 10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd`, copying its stdout and stderr line by line to our stderr and to `log`.
/// On failure the error names the log and quotes its last lines.
pub fn stream_to_log(mut cmd: Command, log: &Path) -> Result<()> {
    let program = program_name(&cmd);
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let file = Arc::new(Mutex::new(file));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{program}`"))?;
    let copiers = [
        copy_lines(
            child.stdout.take().expect("stdout was piped"),
            Arc::clone(&file),
        ),
        copy_lines(
            child.stderr.take().expect("stderr was piped"),
            Arc::clone(&file),
        ),
    ];
    let status = child.wait()?;
    for copier in copiers {
        let _ = copier.join();
    }
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "`{program}` failed ({status}); full log: {}\n{}",
            log.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

fn copy_lines(pipe: impl Read + Send + 'static, file: Arc<Mutex<File>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            eprintln!("    | {line}");
            if let Ok(mut file) = file.lock() {
                let _ = writeln!(file, "{line}");
            }
        }
    })
}

/// Drops ANSI escape sequences (the classic builder colours a step's stderr), so logs can be
/// searched as plain text.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Starts `cmd` in its own session, detached from us, with output appended to `log`.
pub fn spawn_detached(mut cmd: Command, log: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let program = program_name(&cmd);
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    cmd.spawn()
        .with_context(|| format!("starting `{program}` in the background"))
}

/// Waits until `ready` returns true, or fails naming `what` when `timeout` passes.
/// `ready` may return an error to stop waiting early (a process died, say).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {:.0}s waiting for {what}",
                timeout.as_secs_f64()
            );
        }
        thread::sleep(POLL);
    }
}

/// A new child process for `program`. Every process xtask starts is made here (clippy's
/// `disallowed-methods` keeps `Command::new` to this module), so a policy for children, such as
/// the environment they inherit, has one home.
#[allow(clippy::disallowed_methods)]
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn program_name(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    // The subcommand helps ("docker build"); further arguments are left out on purpose: they
    // are not needed to recognise the command and keep error messages free of values.
    if let Some(first) = cmd.get_args().next() {
        words.push(first.to_string_lossy().into_owned());
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_ansi_keeps_text() {
        assert_eq!(
            super::strip_ansi("\u{1b}[0m\u{1b}[91m   Compiling\u{1b}[0m x"),
            "   Compiling x"
        );
    }
}
