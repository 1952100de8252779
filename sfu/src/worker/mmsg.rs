//! `sendmmsg(2)`: many datagrams, each to its own destination, in one
//! system call. The fan-out sends one datagram per viewer per packet; one
//! `sendto` each was the largest single cost of a forwarded packet after
//! SRTP (the syscall entry and exit, not the copy). mediasoup and LiveKit
//! batch the same way on Linux.
//!
//! This is the crate's one `unsafe` module: nix 0.26's wrapper reads back
//! uninitialized address storage when its results are counted, and no
//! well-kept crate sends to many destinations at once (quinn-udp's GSO needs
//! one destination). The unsafe part is building `mmsghdr`s that point into
//! buffers borrowed for the duration of the call, and the call itself.
//!
//! Invariants: every pointer handed to the kernel borrows from `datagrams`
//! or from `addrs` (stack storage of this call) and outlives the call; the
//! kernel only reads them (`sendmmsg` does not write the iovecs or names).

#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// At most this many datagrams per call.
pub const MAX_BATCH: usize = 64;

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

fn raw_addr(addr: &SocketAddr) -> RawAddr {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in; we write exactly one sockaddr_in at its start.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    RawAddr {
        storage,
        len: len as libc::socklen_t,
    }
}

/// Sends up to [`MAX_BATCH`] datagrams; returns how many the kernel took
/// (it stops at the first it cannot take: `WouldBlock` then comes back as
/// `Ok` with fewer than asked, or as the error when none went).
pub fn send(socket: BorrowedFd<'_>, datagrams: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let n = datagrams.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut addrs = [RawAddr {
        // SAFETY: plain old data, all-zero is valid.
        storage: unsafe { std::mem::zeroed() },
        len: 0,
    }; MAX_BATCH];
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_BATCH];
    // SAFETY: mmsghdr is plain old data; all-zero (null pointers, zero
    // lengths) is a valid empty header.
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for (i, (to, data)) in datagrams[..n].iter().enumerate() {
        addrs[i] = raw_addr(to);
        iovecs[i] = libc::iovec {
            // The kernel only reads through it (sendmmsg never writes).
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
    }
    for i in 0..n {
        let h = &mut headers[i].msg_hdr;
        h.msg_name = &mut addrs[i].storage as *mut _ as *mut libc::c_void;
        h.msg_namelen = addrs[i].len;
        h.msg_iov = &mut iovecs[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: `headers[..n]` point into `addrs`, `iovecs` (locals that live
    // until this returns) and the caller's datagrams (borrowed for this
    // call); the fd is a valid open socket for the borrow's lifetime.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_reaches_each_destination() {
        let rx: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let batch: Vec<(SocketAddr, &[u8])> = rx
            .iter()
            .zip(&payloads)
            .map(|(r, p)| (r.local_addr().unwrap(), p.as_slice()))
            .collect();
        assert_eq!(send(tx.as_fd(), &batch).unwrap(), 3);
        for (r, p) in rx.iter().zip(&payloads) {
            let mut buf = [0u8; 512];
            let (n, from) = r.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], p.as_slice());
            assert_eq!(from, tx.local_addr().unwrap());
        }
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send(tx.as_fd(), &[]).unwrap(), 0);
    }
}
