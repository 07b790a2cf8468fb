//! Virtual time under KVM: the host clock drives the machine clock, and a helper thread kicks the
//! vCPU out of KVM_RUN when a device deadline (a PIT tick, say) comes due.
//! Teaches: a natively running guest makes no exits of its own, so a VMM must interrupt it to deliver time.
//!
//! Devices only ever see `machine.bus.now_ns()`. While KVM runs the guest, virtual time is
//! "virtual time at the start of this run + host time elapsed since", applied at every exit, so
//! the clock continues seamlessly from wherever an emulated engine left it.
//!
//! The kick: a guest spinning in `jmp $` never exits, yet the PIT wants to interrupt it. The
//! [`Kicker`] thread sleeps until the next deadline and then sends the vCPU thread a real-time
//! signal whose handler does nothing. The handler is installed without `SA_RESTART`, so the
//! KVM_RUN ioctl returns `EINTR`: a VM exit we asked for, after which the run loop advances time
//! and injects the interrupt. A signal that lands just before the thread enters KVM_RUN would be
//! lost, so the kicker repeats it every millisecond until the run loop moves the deadline on.

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devices::Bus;

/// Maps host monotonic time onto the machine's virtual clock for one `run` call.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    host_start: Instant,
    virt_start: u64,
}

impl HostClock {
    /// Starts counting from the bus's current virtual time.
    pub fn start(bus: &Bus) -> Self {
        HostClock {
            host_start: Instant::now(),
            virt_start: bus.now_ns(),
        }
    }

    /// Virtual nanoseconds now.
    pub fn now_ns(&self) -> u64 {
        let elapsed = self.host_start.elapsed().as_nanos();
        self.virt_start
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// Brings the bus up to date: devices whose deadline has passed are ticked (and may reach
    /// guest RAM, the very memory KVM maps).
    pub fn sync(&self, bus: &mut Bus, ram: &mut [u8]) {
        bus.advance_time_with(self.now_ns(), ram);
    }

    /// The host instant at which virtual time reaches `virt_ns`.
    pub fn host_instant(&self, virt_ns: u64) -> Instant {
        let ahead = Duration::from_nanos(virt_ns.saturating_sub(self.virt_start));
        self.host_start
            .checked_add(ahead)
            .unwrap_or(self.host_start + Duration::from_secs(365 * 24 * 3600))
    }
}

/// The real-time signal used to kick the vCPU thread out of KVM_RUN (SIGRTMIN + this).
const KICK_SIGNAL_OFFSET: libc::c_int = 3;

/// How often an unanswered kick is repeated.
const KICK_REPEAT: Duration = Duration::from_millis(1);

fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN() + KICK_SIGNAL_OFFSET
}

extern "C" fn ignore_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: the point of the signal is that KVM_RUN returns EINTR.
}

/// Installs the no-op handler once per process.
fn install_kick_handler() -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        vmm_sys_util::signal::register_signal_handler(kick_signal(), ignore_kick)
            .map_err(|e| e.errno())
    });
    result.map_err(std::io::Error::from_raw_os_error)
}

#[derive(Debug, Default)]
struct KickState {
    /// The thread to kick and when; `None` while no run is in progress.
    target: Option<(libc::pthread_t, Option<Instant>)>,
    shutdown: bool,
}

/// A helper thread that interrupts KVM_RUN at virtual-time deadlines.
#[derive(Debug)]
pub struct Kicker {
    shared: Arc<(Mutex<KickState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Kicker {
    pub fn new() -> std::io::Result<Self> {
        install_kick_handler()?;
        let shared = Arc::new((Mutex::new(KickState::default()), Condvar::new()));
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vmscope-kvm-kick".into())
            .spawn(move || kick_loop(&for_thread))?;
        Ok(Kicker {
            shared,
            thread: Some(thread),
        })
    }

    /// The calling thread (the one about to call KVM_RUN) becomes the kick target.
    pub fn arm(&self) {
        // SAFETY: pthread_self has no preconditions and always succeeds.
        let me = unsafe { libc::pthread_self() };
        self.update(|s| s.target = Some((me, None)));
    }

    /// Stop kicking: the run is over. Taken under the lock the kicker signals under, so no
    /// signal reaches the thread after this returns.
    pub fn disarm(&self) {
        self.update(|s| s.target = None);
    }

    /// Sets (or clears) the host instant of the next kick.
    pub fn set_deadline(&self, when: Option<Instant>) {
        let (lock, cvar) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, deadline)) = s.target.as_mut() {
            if *deadline != when {
                *deadline = when;
                cvar.notify_one();
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut KickState)) {
        let (lock, cvar) = &*self.shared;
        f(&mut lock.lock().unwrap_or_else(PoisonError::into_inner));
        cvar.notify_one();
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.update(|s| {
            s.shutdown = true;
            s.target = None;
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn kick_loop(shared: &(Mutex<KickState>, Condvar)) {
    let (lock, cvar) = shared;
    let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if s.shutdown {
            return;
        }
        let wait = match s.target {
            Some((thread, Some(deadline))) => {
                let now = Instant::now();
                if now >= deadline {
                    // SAFETY: `thread` is the live thread inside `run` (it clears the target under
                    // this lock before returning); the signal has a handler, so it cannot kill it.
                    unsafe { libc::pthread_kill(thread, kick_signal()) };
                    KICK_REPEAT
                } else {
                    deadline - now
                }
            }
            _ => Duration::from_secs(3600),
        };
        s = cvar
            .wait_timeout(s, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_clock_continues_from_virtual_time() {
        let mut bus = Bus::new();
        bus.advance_time(5_000_000);
        let clock = HostClock::start(&bus);
        assert!(clock.now_ns() >= 5_000_000);
        let at = clock.host_instant(7_000_000);
        let d = at.duration_since(Instant::now());
        assert!(
            d <= Duration::from_millis(2),
            "2 ms of virtual time ahead, got {d:?}"
        );
        std::thread::sleep(Duration::from_millis(3));
        clock.sync(&mut bus, &mut []);
        assert!(bus.now_ns() >= 8_000_000);
    }

    #[test]
    fn kicker_interrupts_a_blocking_syscall() {
        let kicker = Kicker::new().unwrap();
        kicker.arm();
        kicker.set_deadline(Some(Instant::now() + Duration::from_millis(20)));
        // A blocking read on a pipe stands in for KVM_RUN: the kick must make it fail with EINTR.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let mut byte = 0u8;
        // SAFETY: reading one byte into a live local from a pipe we own.
        let r = unsafe { libc::read(fds[0], &mut byte as *mut u8 as *mut libc::c_void, 1) };
        let err = std::io::Error::last_os_error();
        kicker.disarm();
        // SAFETY: closing the two descriptors we opened.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!(r, -1);
        assert_eq!(err.raw_os_error(), Some(libc::EINTR));
    }
}
