//! The server's few calls into the operating system that std does not offer: the SIGBUS
//! report for a served store truncated under its memory map, the descriptor limit the
//! default connection cap is derived from, and transparent huge pages turned off.
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Turns transparent huge pages off for every page this process touches from now on
/// (`prctl(PR_SET_THP_DISABLE)`, process-wide; pages already huge stay so). On a virtual
/// machine whose host backs guest memory lazily the first touch of a fresh 2 MiB page takes
/// milliseconds (measured: ~5 ms), all at once on the thread that touches it: the server's
/// reactor, with every request waiting on it. With 4 KiB pages the same cost comes in pieces
/// of microseconds.
pub fn no_huge_pages_from_now() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes no memory of this process,
    // only how later page faults are served.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The line the SIGBUS handler writes, formatted before the handler is installed (a signal
/// handler may not allocate or format). Leaked: it lives as long as the process.
static FAULT_MESSAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Length of [`FAULT_MESSAGE`], stored before the pointer is published.
static FAULT_MESSAGE_LEN: AtomicUsize = AtomicUsize::new(0);

/// The line written to stderr when the server dies of SIGBUS while serving the mapped store at
/// `path`.
pub fn store_fault_message(path: &Path) -> String {
    format!(
        "crv serve: fatal SIGBUS (bus error) reading the memory-mapped store {}: the file was \
         truncated or rewritten in place while it was served. A served store must never change \
         in place: publish a new store by writing another file and renaming it over this one, \
         or serve with --copy-to-memory.\n",
        path.display()
    )
}

/// Installs a SIGBUS handler for the whole process that writes [`store_fault_message`] of
/// `path` to stderr and then dies of SIGBUS as before (default action, so the exit status and
/// any core dump are unchanged). Reading a mapped page past the end of a truncated file raises
/// SIGBUS; without this the process vanishes with nothing in its log. Call once, after the
/// store is mapped; a later call replaces the message.
pub fn report_store_faults(path: &Path) -> std::io::Result<()> {
    let message: &'static mut [u8] = Box::leak(store_fault_message(path).into_bytes().into());
    FAULT_MESSAGE_LEN.store(message.len(), Ordering::Release);
    FAULT_MESSAGE.store(message.as_mut_ptr(), Ordering::Release);
    // SAFETY: `action` is fully initialised (zeroed, then the mask emptied and the handler and
    // flags set) before it is passed; `on_bus_error` is an `extern "C"` function with the
    // three-argument signature SA_SIGINFO calls, and does only async-signal-safe work.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_sigaction = on_bus_error as *const () as libc::sighandler_t;
        // SA_RESETHAND: the default action is back before the handler runs, so the re-raised
        // (or re-faulting) SIGBUS kills the process.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut())
    };
    if installed == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The SIGBUS handler: one `write(2)` of the pre-formatted message, then SIGBUS again with
/// the default action (pending until the handler returns, as the signal is blocked meanwhile).
extern "C" fn on_bus_error(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    let message = FAULT_MESSAGE.load(Ordering::Acquire);
    let len = FAULT_MESSAGE_LEN.load(Ordering::Acquire);
    if !message.is_null() {
        // SAFETY: `message` points to `len` leaked, never freed bytes (published after the
        // length); write(2) and raise(3) are async-signal-safe. A failed write is ignored:
        // there is nothing better to do in a dying process.
        unsafe {
            libc::write(libc::STDERR_FILENO, message.cast(), len);
        }
    }
    // SAFETY: raise(3) is async-signal-safe; the disposition is the default one again.
    unsafe {
        libc::raise(libc::SIGBUS);
    }
}

/// The soft limit on open file descriptors (`ulimit -n`), `None` when unlimited or unknown.
pub fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_message_names_the_file_and_the_way_out() {
        let message = store_fault_message(Path::new("/data/served.crv"));
        assert!(message.contains("/data/served.crv"), "{message}");
        assert!(message.contains("--copy-to-memory"), "{message}");
        assert!(message.ends_with('\n'));
    }

    #[test]
    fn the_descriptor_limit_is_the_soft_limit() {
        // Every test process has a finite `ulimit -n` on the machines this runs on.
        let limit = descriptor_limit().expect("a finite descriptor limit");
        assert!(limit >= 3, "{limit}");
    }
}
