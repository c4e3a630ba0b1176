//! Loopback ports. [`free_port`] is how xtask, its benchmarks and its tests pick a port for a
//! server they start: the kernel's choice of an unused one, which is racy only against another
//! process binding the same port in the moment between, and a bind that then fails says so.

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_can_be_bound() {
        let port = super::free_port().unwrap();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
