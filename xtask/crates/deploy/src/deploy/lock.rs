//! One deploy at a time. Render's own "is a deploy in progress?" check is racy (two people can
//! both see "no" and trigger, and under the default "override" setting the second silently
//! cancels the first). The production database is the one resource every deployer shares, so
//! the lock is a PostgreSQL session advisory lock on it, held for the whole deploy, plus a row
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

use xtask_core::{process, progress};
use xtask_data::db::push::Conn;

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
    lines: mpsc::Receiver<String>,
    database: String,
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
    let child = cmd.spawn().context("starting psql for the deploy lock")?;
    let mut lock = Lock::start(child, conn.display());
    let started = Instant::now();
    let mut announced = false;
    // One round trip: try the lock and, when it is ours, record the holder.
    let attempt = format!(
        "do $lock$ begin \
           if pg_try_advisory_lock({KEY}) then \
             create schema if not exists openeu_deploy; \
             create table if not exists openeu_deploy.lock (id int primary key, who text not null, commit text not null, service text not null, since timestamptz not null, backend_pid int not null); \
             insert into openeu_deploy.lock values (1, {who}, {commit}, {service}, now(), pg_backend_pid()) \
               on conflict (id) do update set who = excluded.who, commit = excluded.commit, service = excluded.service, since = excluded.since, backend_pid = excluded.backend_pid; \
             perform set_config('openeu.deploy_lock', 'held', false); \
           else perform set_config('openeu.deploy_lock', 'busy', false); end if; end $lock$;\n\
         select current_setting('openeu.deploy_lock', true);",
        who = literal(&holder.who),
        commit = literal(&holder.commit),
        service = literal(&holder.service)
    );
    loop {
        match lock.query(&attempt) {
            Ok(answer) if answer.trim() == "held" => return Ok(lock),
            Ok(answer) if answer.trim() == "busy" => {}
            Ok(other) => {
                let stderr = lock.stop();
                bail!(
                    "the deploy lock on {} could not be taken ({}): {stderr}",
                    conn.display(),
                    if other.is_empty() {
                        "no answer"
                    } else {
                        other.as_str()
                    }
                );
            }
            Err(err) => {
                let stderr = lock.stop();
                bail!("{err:#}: {stderr}");
            }
        }
        let held_by = lock
            .query(
                "select who || ' deploying ' || commit || ' to ' || service || ' since ' || to_char(since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' from openeu_deploy.lock where id = 1;",
            )
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "another deployer (no holder row yet)".to_owned());
        if !wait {
            lock.stop();
            bail!(
                "another deploy holds the deploy lock on {}: {held_by}; wait for it (`--wait`) or follow it with `cargo xtask deploy status`",
                conn.display()
            );
        }
        if started.elapsed() >= timeout {
            lock.stop();
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
}

impl Lock {
    fn start(mut child: Child, database: String) -> Lock {
        let stdin = child.stdin.take();
        let lines = read_lines(child.stdout.take().expect("stdout was piped"));
        Lock {
            child,
            stdin,
            lines,
            database,
        }
    }

    /// Runs `sql` in the lock's session: its rows, `|`-separated. A failed statement answers
    /// nothing (psql reports it on stderr) and leaves the session, and the lock, as they were.
    /// `deploy` reads the migration history through here, saving a connection.
    pub fn query(&mut self, sql: &str) -> Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the deploy lock's session is closed")?;
        // The marker line tells where the answer ends; psql prints results as they come.
        writeln!(stdin, "{sql}\n\\echo __end__").context("writing to psql")?;
        stdin.flush()?;
        let mut answer = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line == "__end__" => return Ok(answer.join("\n")),
                Ok(line) => answer.push(line),
                Err(_) => bail!(
                    "the deploy lock's database session on {} ended or stalled",
                    self.database
                ),
            }
        }
    }

    /// Ends the session; what psql said on stderr.
    fn stop(&mut self) -> String {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        let _ = self.child.wait();
        text.trim().to_owned()
    }
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
        // End of input ends the session, which releases the advisory lock; a psql that does
        // not end by then is killed, which ends the session too.
        let ended = process::wait_until("psql to end", Duration::from_secs(5), || {
            Ok(self.child.try_wait()?.is_some())
        });
        if ended.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
