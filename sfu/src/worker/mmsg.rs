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
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// At most this many datagrams per call.
pub const MAX_BATCH: usize = 64;

/// A socket address in the kernel's layout: a `sockaddr_in6` holds either
/// family (28 bytes, where `sockaddr_storage` would be 128 to zero per
/// datagram).
#[derive(Clone, Copy)]
struct RawAddr {
    storage: libc::sockaddr_in6,
    len: libc::socklen_t,
}

fn raw_addr(addr: &SocketAddr) -> RawAddr {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
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
            // SAFETY: sockaddr_in6 is larger than sockaddr_in and as aligned
            // (both 4); we write exactly one sockaddr_in at its start.
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
            storage = sin6;
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    RawAddr {
        storage,
        len: len as libc::socklen_t,
    }
}

/// Sends the first [`MAX_BATCH`] of `datagrams`; returns how many the
/// kernel took (it stops at the first it cannot take: `WouldBlock` then
/// comes back as `Ok` with fewer than asked, or as the error when none
/// went). Takes an iterator so the caller builds no list per call.
pub fn send<'a>(
    socket: BorrowedFd<'_>,
    datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
) -> io::Result<usize> {
    // Only the `n` entries used are written (a batch is often far smaller
    // than MAX_BATCH; zeroing every array cost ~4,000 instructions a call).
    let mut addrs = [const { MaybeUninit::<RawAddr>::uninit() }; MAX_BATCH];
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_BATCH];
    let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; MAX_BATCH];
    let mut n = 0;
    for (i, (to, data)) in datagrams.into_iter().take(MAX_BATCH).enumerate() {
        n = i + 1;
        addrs[i].write(raw_addr(&to));
        iovecs[i].write(libc::iovec {
            // The kernel only reads through it (sendmmsg never writes).
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        });
    }
    if n == 0 {
        return Ok(0);
    }
    for i in 0..n {
        // SAFETY: msghdr is plain old data; all-zero (null pointers, zero
        // lengths) is a valid empty header.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        let addr = addrs[i].as_mut_ptr();
        // SAFETY: `addrs[i]` was written in the loop above (i < n).
        h.msg_namelen = unsafe { (*addr).len };
        // SAFETY: as above; a field of an initialized local.
        h.msg_name = unsafe { std::ptr::addr_of_mut!((*addr).storage) } as *mut libc::c_void;
        h.msg_iov = iovecs[i].as_mut_ptr();
        h.msg_iovlen = 1;
        headers[i].write(libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        });
    }
    // SAFETY: `headers[..n]` are initialized and point into `addrs[..n]`,
    // `iovecs[..n]` (initialized locals that live until this returns) and the caller's datagrams
    // (borrowed for this call); MaybeUninit<T> has T's layout; the fd is a
    // valid open socket for the borrow's lifetime.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr() as *mut libc::mmsghdr,
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
        assert_eq!(send(tx.as_fd(), batch.iter().copied()).unwrap(), 3);
        for (r, p) in rx.iter().zip(&payloads) {
            let mut buf = [0u8; 512];
            let (n, from) = r.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], p.as_slice());
            assert_eq!(from, tx.local_addr().unwrap());
        }
    }

    #[test]
    fn ipv6_destinations_get_their_datagrams() {
        let Ok(rx) = std::net::UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this host
        };
        let tx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let to = rx.local_addr().unwrap();
        let batch = [(to, b"one".as_slice()), (to, b"two".as_slice())];
        assert_eq!(send(tx.as_fd(), batch).unwrap(), 2);
        let mut buf = [0u8; 16];
        for expected in [b"one", b"two"] {
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], expected);
            assert_eq!(from, tx.local_addr().unwrap());
        }
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send(tx.as_fd(), std::iter::empty()).unwrap(), 0);
    }
}
