//! Linux: `ioctl(SIOCOUTQ)`, `getsockopt(TCP_INFO)`, and the abortive close.
//! The crate's only `unsafe` lives here.
#![allow(unsafe_code)]

use std::{io, mem};

use super::{Sample, SampleError, TcpState};

/// `struct tcp_info` from `include/uapi/linux/tcp.h`, up to `tcpi_snd_wnd`.
/// Declared here rather than taken from `libc` because the fields this crate
/// needs (`tcpi_bytes_acked`, `tcpi_snd_wnd`) are newer than libc's copy; the
/// kernel fills only what it knows, so every late field is checked against the
/// length it returned.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    app_limited: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
    delivery_rate: u64,
    busy_time: u64,
    rwnd_limited: u64,
    sndbuf_limited: u64,
    delivered: u32,
    delivered_ce: u32,
    bytes_sent: u64,
    bytes_retrans: u64,
    dsack_dups: u32,
    reord_seen: u32,
    rcv_ooopack: u32,
    snd_wnd: u32,
}

/// The end offset of a field: the kernel must have filled this many bytes.
macro_rules! end_of {
    ($field:ident) => {
        mem::offset_of!(TcpInfo, $field) + {
            let probe = TcpInfo::default();
            mem::size_of_val(&probe.$field)
        }
    };
}

fn last_os_error() -> SampleError {
    SampleError::Os(io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

pub(crate) fn sample(fd: i32) -> Result<Sample, SampleError> {
    let mut info = TcpInfo::default();
    let mut len = mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, a plain
    // repr(C) struct of integers that is exactly `len` bytes long, and
    // stores the length it wrote back into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfo).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_os_error());
    }
    let filled = len as usize;
    if filled < end_of!(rtt) {
        return Err(SampleError::Unsupported);
    }
    let has = |end: usize| filled >= end;
    let notsent_bytes = has(end_of!(notsent_bytes)).then_some(info.notsent_bytes);
    // The send queue is what was written and not yet acked: bytes not sent
    // at all, plus segments in flight. With neither, it is empty, and the
    // ioctl — half the cost of a sample — can be skipped; otherwise
    // SIOCOUTQ gives the exact byte count.
    let send_queue = if info.unacked == 0 && notsent_bytes == Some(0) {
        0
    } else {
        outq(fd)?
    };
    Ok(Sample {
        state: TcpState(info.state),
        send_queue,
        bytes_acked: has(end_of!(bytes_acked)).then_some(info.bytes_acked),
        rtt_us: info.rtt,
        snd_wnd: has(end_of!(snd_wnd)).then_some(info.snd_wnd),
        notsent_bytes,
        probes: info.probes,
        retransmits: info.retransmits,
    })
}

/// Bytes written and not yet acknowledged (`SIOCOUTQ`).
fn outq(fd: i32) -> Result<u32, SampleError> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (== TIOCOUTQ) writes one c_int through the pointer,
    // which points at a live, aligned c_int on this stack frame.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    if rc != 0 {
        return Err(last_os_error());
    }
    Ok(queued.max(0) as u32)
}

/// Makes the next close a reset (`SO_LINGER` 0) and shuts both directions
/// down now, so a write blocked on this socket returns at once. Returns
/// whether the shutdown took.
pub(crate) fn abort(fd: i32) -> bool {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: SO_LINGER reads one `struct linger` from the pointer, which
    // points at a live value of exactly the length passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // SAFETY: shutdown takes no pointers; on a stale descriptor it fails
    // with EBADF/ENOTSOCK, which callers rule out by holding the handle lock.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) == 0 }
}

/// The process's soft limit on open descriptors (`RLIMIT_NOFILE`).
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit` through the pointer, which
    // points at a live value on this stack frame.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn thread_cpu_time() -> Option<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `struct timespec` through the pointer,
    // which points at a live value on this stack frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
