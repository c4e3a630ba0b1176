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

/// How long a child killed at its deadline gets to close its pipes, so that what it printed
/// before can still be quoted.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Runs `cmd` to completion with duct, capturing its output; kills it when `timeout` passes.
/// `input`, when given, is fed to the child's stdin on duct's own thread while stdout and stderr
/// drain, so an input of any size cannot deadlock against a child that writes as it reads, and a
/// child that exits without reading all of it (curl refusing its config, say) is not an error
/// here: its exit status and stderr come back in the `Output` like any other. The input is the way
/// secrets reach a command, so no error quotes it, and none quotes the arguments after the first.
pub fn output_with_timeout(
    cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let program = program_name(&cmd);
    let expression = match input {
        Some(bytes) => expression(&cmd).stdin_bytes(bytes),
        None => expression(&cmd).stdin_null(),
    };
    // `unchecked`: a non-zero exit is the caller's to judge, with the status and stderr in hand.
    let handle = expression
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .with_context(|| format!("starting `{program}`"))?;
    let deadline = Instant::now() + timeout;
    if wait_for(&handle, deadline).with_context(|| format!("running `{program}`"))? {
        return handle
            .into_output()
            .with_context(|| format!("running `{program}`"));
    }
    // Killing the child ends its pipes, unless a grandchild inherited them: then its output is
    // given up after the grace period rather than waited on.
    let _ = handle.kill();
    let stderr = match wait_for(&handle, Instant::now() + KILL_GRACE) {
        Ok(true) => handle
            .into_output()
            .map(|out| out.stderr)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    bail!(
        "`{program}` did not finish within its deadline of {:.1}s and was killed{}",
        timeout.as_secs_f64(),
        if stderr.is_empty() {
            String::new()
        } else {
            format!("; its stderr: {stderr}")
        }
    )
}

/// Waits until `handle` has finished and its output is collected (true) or `deadline` passes
/// (false). The pause between looks starts at a millisecond, so that a quick child (most are)
/// costs no more than its own run, and grows to [`POLL`].
fn wait_for(handle: &duct::Handle, deadline: Instant) -> Result<bool> {
    let mut pause = Duration::from_millis(1);
    loop {
        if handle.try_wait()?.is_some() {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL);
    }
}

/// The duct expression for `cmd`: its program, arguments, environment changes and directory.
/// `Command` cannot tell whether `env_clear` was called, so a caller that clears the environment
/// starts its child otherwise (none of the callers of [`output_with_timeout`] does).
fn expression(cmd: &Command) -> duct::Expression {
    let mut expression = duct::cmd(cmd.get_program().to_os_string(), cmd.get_args());
    for (name, value) in cmd.get_envs() {
        expression = match value {
            Some(value) => expression.env(name, value),
            None => expression.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        expression = expression.dir(dir);
    }
    expression
}

/// What a failed child left: `` `program` exited with code N: <its stderr> ``, for the callers
/// of [`output_with_timeout`] that treat a non-zero exit as an error. Its stdin and arguments
/// are not part of it (they may hold secrets); its stderr is, because that is the reason.
pub fn failure(program: &str, out: &Output) -> String {
    let status = match out.status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("was ended ({})", out.status),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if stderr.is_empty() {
        format!("`{program}` {status} and printed nothing on stderr")
    } else {
        format!("`{program}` {status}: {stderr}")
    }
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

/// Finds the executable `name` on PATH (the `which` crate's search).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    which::which(name).ok()
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
    use super::*;

    /// A child that echoes its stdin: 8 MiB, far beyond the pipe buffers on both sides, goes in
    /// and comes back whole, which needs stdin fed while stdout drains.
    #[test]
    fn a_large_input_is_fed_while_the_output_drains() {
        let input: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let out =
            output_with_timeout(command("cat"), Some(&input), Duration::from_secs(60)).unwrap();
        assert!(out.status.success(), "{}", failure("cat", &out));
        assert_eq!(out.stdout.len(), input.len());
        assert!(out.stdout == input, "the echo differs from the input");
    }

    /// A child that exits at once without reading its (large) stdin: writing to it breaks the
    /// pipe, yet what comes back is the child's own exit code and reason, not a write error.
    #[test]
    fn a_child_that_exits_early_keeps_its_exit_code_and_reason() {
        let mut cmd = command("sh");
        cmd.args(["-c", "echo 'refusing: the config is bad' >&2; exit 3"]);
        let input = vec![b'x'; 4 << 20];
        let out = output_with_timeout(cmd, Some(&input), Duration::from_secs(30)).unwrap();
        assert_eq!(out.status.code(), Some(3));
        let message = failure("sh -c", &out);
        assert!(message.contains("exited with code 3"), "{message}");
        assert!(message.contains("refusing: the config is bad"), "{message}");
        assert!(!message.to_lowercase().contains("broken pipe"), "{message}");
        // The secret input is never part of the message.
        assert!(!message.contains("xxxx"), "{message}");
    }

    /// A child that outlives its deadline is killed, and the error says so and quotes what it
    /// printed on stderr before.
    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let mut cmd = command("sh");
        cmd.args(["-c", "echo 'still working' >&2; exec sleep 60"]);
        let started = Instant::now();
        let err = output_with_timeout(cmd, Some(b"secret-input"), Duration::from_millis(500))
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(started.elapsed() < Duration::from_secs(10), "{message}");
        assert!(message.contains("deadline"), "{message}");
        assert!(message.contains("killed"), "{message}");
        assert!(message.contains("`sh -c`"), "{message}");
        assert!(message.contains("still working"), "{message}");
        assert!(!message.contains("secret-input"), "{message}");
    }

    /// The environment changes and the directory set on the `Command` reach the child.
    #[test]
    fn the_command_s_environment_and_directory_are_kept() {
        let dir = std::env::temp_dir();
        let mut cmd = command("sh");
        cmd.args([
            "-c",
            "printf '%s|%s|%s' \"$XTASK_A\" \"${HOME-unset}\" \"$(pwd -P)\"",
        ])
        .env("XTASK_A", "a value")
        .env_remove("HOME")
        .current_dir(&dir);
        let out = output_with_timeout(cmd, None, Duration::from_secs(30)).unwrap();
        let expected = format!("a value|unset|{}", dir.canonicalize().unwrap().display());
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }

    #[test]
    fn strip_ansi_keeps_text() {
        assert_eq!(
            super::strip_ansi("\u{1b}[0m\u{1b}[91m   Compiling\u{1b}[0m x"),
            "   Compiling x"
        );
    }
}
