//! Calls on every turn of Node's own loop, around its poll phase: a libuv
//! `uv_prepare_t` just before it (after the timers and libuv's pending
//! queue), told whether the loop will sleep there, or a `uv_check_t` just
//! after it (before node's immediates: a check handle started later runs
//! first). Neither keeps the process alive.

use std::ffi::{c_int, c_void};

use napi::sys;

use super::uv::{alloc_handle, free_handle, uv_close, uv_handle_get_data, uv_handle_set_data, uv_loop, uv_unref};

type PhaseCallback = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
    fn uv_prepare_init(uv_loop: *mut c_void, handle: *mut c_void) -> c_int;
    fn uv_prepare_start(handle: *mut c_void, cb: PhaseCallback) -> c_int;
    fn uv_prepare_stop(handle: *mut c_void) -> c_int;
    fn uv_check_init(uv_loop: *mut c_void, handle: *mut c_void) -> c_int;
    fn uv_check_start(handle: *mut c_void, cb: PhaseCallback) -> c_int;
    fn uv_check_stop(handle: *mut c_void) -> c_int;
    fn uv_backend_timeout(uv_loop: *const c_void) -> c_int;
}

/// Where in the loop's turn the call comes.
#[derive(Clone, Copy)]
pub enum Phase {
    BeforePoll,
    AfterPoll,
}

impl Phase {
    /// Its `uv_handle_type`.
    fn kind(self) -> c_int {
        match self {
            Phase::BeforePoll => 9, // UV_PREPARE
            Phase::AfterPoll => 2,  // UV_CHECK
        }
    }
}

/// What the handle calls, on the JS thread. `sleeps`: before the poll
/// phase, whether the loop may wait there (no timer due, no immediate
/// queued); after it, always false.
pub trait OnPhase {
    fn on_phase(&self, sleeps: bool);
}

/// The handle's data: the loop it asks, its phase, and whom it calls.
struct Target<T> {
    uv_loop: *mut c_void,
    phase: Phase,
    target: T,
}

/// A started prepare or check handle. Its memory belongs to libuv until
/// its close callback has run, so it is freed there, never in `Drop`.
pub struct LoopPhase<T: OnPhase> {
    handle: *mut c_void,
    phase: Phase,
    _target: std::marker::PhantomData<T>,
}

impl<T: OnPhase> LoopPhase<T> {
    pub fn start(env: sys::napi_env, phase: Phase, target: T) -> napi::Result<LoopPhase<T>> {
        let uv_loop = uv_loop(env)?;
        let handle = alloc_handle(phase.kind());
        // SAFETY: `handle` is as many writable bytes as libuv asked for its
        // kind; the loop is Node's, running on this thread. On failure the
        // handle was never initialised and is freed here.
        unsafe {
            let r = match phase {
                Phase::BeforePoll => uv_prepare_init(uv_loop, handle),
                Phase::AfterPoll => uv_check_init(uv_loop, handle),
            };
            if r != 0 {
                free_handle(handle, phase.kind());
                return Err(napi::Error::from_reason(format!("a loop phase handle failed to start ({r})")));
            }
            uv_handle_set_data(handle, Box::into_raw(Box::new(Target { uv_loop, phase, target })).cast());
            match phase {
                Phase::BeforePoll => uv_prepare_start(handle, on_phase::<T>),
                Phase::AfterPoll => uv_check_start(handle, on_phase::<T>),
            };
            uv_unref(handle);
        }
        Ok(LoopPhase { handle, phase, _target: std::marker::PhantomData })
    }

    pub fn close(self) {
        // SAFETY: the handle is initialised and closed exactly once here;
        // `on_close` frees it and its target afterwards.
        unsafe {
            match self.phase {
                Phase::BeforePoll => uv_prepare_stop(self.handle),
                Phase::AfterPoll => uv_check_stop(self.handle),
            };
            uv_close(self.handle, Some(on_close::<T>));
        }
    }
}

unsafe extern "C" fn on_phase<T: OnPhase>(handle: *mut c_void) {
    // SAFETY: the data pointer was set from a Box<Target<T>> in `start`
    // and is only freed in `on_close`, after which libuv calls no more
    // callbacks; the loop outlives its handles.
    let data = unsafe { &*uv_handle_get_data(handle).cast::<Target<T>>() };
    let sleeps = match data.phase {
        // SAFETY: as above; a query of the loop running this callback.
        Phase::BeforePoll => (unsafe { uv_backend_timeout(data.uv_loop) }) != 0,
        Phase::AfterPoll => false,
    };
    data.target.on_phase(sleeps);
}

unsafe extern "C" fn on_close<T: OnPhase>(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; both allocations were made
    // in `start` with these exact types and sizes.
    let data = unsafe { Box::from_raw(uv_handle_get_data(handle).cast::<Target<T>>()) };
    let kind = data.phase.kind();
    if let Err(panic) = crate::barrier::catch(|| drop(data)) {
        crate::barrier::warn(&panic);
    }
    // SAFETY: as above.
    unsafe { free_handle(handle, kind) }
}
