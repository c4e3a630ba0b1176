//! One deploy at a time. Render's own "is a deploy in progress?" check is racy (two people can
//! both see "no" and trigger, and under the default "override" setting the second silently
//! cancels the first). The production database is the one resource every deployer shares, so
//! the lock is a `PostgreSQL` session advisory lock on it, held for the whole deploy, plus a row
//! in `openeu_deploy.lock` that says who holds it, with which commit, since when.
//!
//! The lock lives in a psql session that xtask keeps open on a pipe: when xtask exits, however
//! it exits, psql reads end-of-file, the session ends and the server releases the lock. A
//! crashed deployer therefore never leaves production locked; the row it leaves behind is only
//! shown while someone actually holds the advisory lock.
//!
//! The connection must be a session (direct, or a session-mode pooler), not a transaction-mode
//! pooler: advisory locks belong to the server session.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{db::push::Conn, progress};

/// The advisory lock's key: a fixed number, "openeu-deploy" in spirit.
const KEY: i64 = 0x6f70_656e_6575_6470;

/// Who deploys: shown to whoever finds the lock taken.
pub struct Holder {
    pub who: String,
    pub commit: String,
    pub service: String,
}

/// A held lock; released when dropped (or when the process dies).
pub struct Lock {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Takes the lock, or fails saying who holds it; with `wait`, waits up to `timeout` for it.
pub fn acquire(conn: &Conn, holder: &Holder, wait: bool, timeout: Duration) -> Result<Lock> {
    let mut cmd = conn.psql();
    // A failed statement must not end the session (and with it the lock).
    cmd.args(["-v", "ON_ERROR_STOP=0", "-A", "-t", "-F", "|"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group: a Ctrl-C in the terminal reaches xtask, which decides what to do;
    // it must not end the session (and the lock) behind xtask's back.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("starting psql for the deploy lock")?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let lines = read_lines(child.stdout.take().expect("stdout was piped"));
    let mut ask = |sql: &str| -> Result<String> {
        // The marker line tells where the answer ends; psql prints results as they come.
        writeln!(stdin, "{sql}\n\\echo __end__").context("writing to psql")?;
        stdin.flush()?;
        let mut answer = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line == "__end__" => return Ok(answer.join("\n")),
                Ok(line) => answer.push(line),
                Err(_) => bail!(
                    "the deploy lock's database session on {} ended or stalled",
                    conn.display()
                ),
            }
        }
    };
    let started = Instant::now();
    let mut announced = false;
    loop {
        match ask(&format!("select pg_try_advisory_lock({KEY});")) {
            Ok(answer) if answer.trim() == "t" => break,
            Ok(answer) if answer.trim() == "f" => {}
            Ok(other) => bail!("unexpected answer to the deploy lock's query: {other:?}"),
            Err(err) => {
                let _ = child.kill();
                let stderr = child
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default();
                bail!("{err:#}: {stderr}");
            }
        }
        let held_by = ask(
            "select who || ' deploying ' || commit || ' to ' || service || ' since ' || to_char(since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' from openeu_deploy.lock where id = 1;",
        )
        .ok()
        .filter(|s| !s.trim().is_empty() && !s.contains("ERROR"))
        .unwrap_or_else(|| "another deployer (no holder row yet)".to_owned());
        if !wait {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "another deploy holds the deploy lock on {}: {held_by}; wait for it (`--wait`) or follow it with `cargo xtask deploy status`",
                conn.display()
            );
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "waited {:.0}s for the deploy lock, still held: {held_by}",
                timeout.as_secs_f64()
            );
        }
        if !announced {
            progress::note(format!(
                "the deploy lock is held: {held_by}; waiting (--wait)"
            ));
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let record = format!(
        "create schema if not exists openeu_deploy; \
         create table if not exists openeu_deploy.lock (id int primary key, who text not null, commit text not null, service text not null, since timestamptz not null, backend_pid int not null); \
         insert into openeu_deploy.lock values (1, {}, {}, {}, now(), pg_backend_pid()) \
         on conflict (id) do update set who = excluded.who, commit = excluded.commit, service = excluded.service, since = excluded.since, backend_pid = excluded.backend_pid;",
        literal(&holder.who),
        literal(&holder.commit),
        literal(&holder.service)
    );
    let answer = ask(&record)?;
    if answer.contains("ERROR") {
        bail!("recording the deploy lock's holder: {answer}");
    }
    Ok(Lock {
        child,
        stdin: Some(stdin),
    })
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(
                stdin,
                "delete from openeu_deploy.lock where id = 1 and backend_pid = pg_backend_pid();\n\\q"
            );
            drop(stdin);
        }
        // End of input ends the session, which releases the advisory lock.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
