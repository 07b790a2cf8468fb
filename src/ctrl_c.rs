//! Ctrl-C as a request, not a kill: with `vmscope run … --save FILE`, pressing it saves the
//! machine and stops. Teaches: a signal handler may do almost nothing safely — here it sets one
//! atomic flag, and the run loop looks at it between slices, at an instruction boundary.

use std::sync::atomic::{AtomicBool, Ordering};

static PRESSED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Async-signal-safe: one atomic store.
    PRESSED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT (Ctrl-C) sets the flag instead of ending the process.
pub fn catch() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
    // stores to an atomic, which is async-signal-safe; SA_RESTART keeps blocking calls
    // (reads, writes) from failing with EINTR, while KVM_RUN still returns to let the loop see it.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Has Ctrl-C been pressed since [`catch`]?
pub fn pressed() -> bool {
    PRESSED.load(Ordering::SeqCst)
}
