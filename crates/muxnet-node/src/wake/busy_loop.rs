//! A libuv `uv_prepare_t` on Node's own loop that calls back just before a
//! poll phase the loop will not sleep in (a timer due, an immediate
//! queued): there libuv's own poll takes what is ready at once, while a
//! waiter thread the OS has not run yet brings it loop turns later.

use std::ffi::{c_int, c_void};

use napi::sys;

use super::uv::{alloc_handle, free_handle, uv_close, uv_handle_get_data, uv_handle_set_data, uv_loop, uv_unref};

const UV_PREPARE: c_int = 9; // uv_handle_type

type PrepareCallback = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
    fn uv_prepare_init(uv_loop: *mut c_void, handle: *mut c_void) -> c_int;
    fn uv_prepare_start(handle: *mut c_void, cb: PrepareCallback) -> c_int;
    fn uv_prepare_stop(handle: *mut c_void) -> c_int;
    fn uv_backend_timeout(uv_loop: *const c_void) -> c_int;
}

/// What the handle calls, on the JS thread, before a poll phase that will not wait.
pub trait OnBusyLoop {
    fn on_busy_loop(&self);
}

/// The handle's data: the loop it asks, and whom it calls.
struct Target<T> {
    uv_loop: *mut c_void,
    target: T,
}

/// A started `uv_prepare_t`, which keeps no process alive. The handle
/// memory belongs to libuv until its close callback has run, so it is
/// freed there, never in `Drop`.
pub struct BusyLoop<T: OnBusyLoop> {
    handle: *mut c_void,
    _target: std::marker::PhantomData<T>,
}

impl<T: OnBusyLoop> BusyLoop<T> {
    pub fn start(env: sys::napi_env, target: T) -> napi::Result<BusyLoop<T>> {
        let uv_loop = uv_loop(env)?;
        let handle = alloc_handle(UV_PREPARE);
        // SAFETY: `handle` is as many writable bytes as libuv asked for;
        // the loop is Node's, running on this thread. On failure the
        // handle was never initialised and is freed here.
        unsafe {
            let r = uv_prepare_init(uv_loop, handle);
            if r != 0 {
                free_handle(handle, UV_PREPARE);
                return Err(napi::Error::from_reason(format!("uv_prepare_init failed ({r})")));
            }
            uv_handle_set_data(handle, Box::into_raw(Box::new(Target { uv_loop, target })).cast());
            uv_prepare_start(handle, on_prepare::<T>);
            uv_unref(handle);
        }
        Ok(BusyLoop { handle, _target: std::marker::PhantomData })
    }

    pub fn close(self) {
        // SAFETY: the handle is initialised and closed exactly once here;
        // `on_close` frees it and its target afterwards.
        unsafe {
            uv_prepare_stop(self.handle);
            uv_close(self.handle, Some(on_close::<T>));
        }
    }
}

unsafe extern "C" fn on_prepare<T: OnBusyLoop>(handle: *mut c_void) {
    // SAFETY: the data pointer was set from a Box<Target<T>> in `start`
    // and is only freed in `on_close`, after which libuv calls no more
    // callbacks; the loop outlives its handles.
    let data = unsafe { &*uv_handle_get_data(handle).cast::<Target<T>>() };
    // SAFETY: as above; a query of the loop running this callback.
    if unsafe { uv_backend_timeout(data.uv_loop) } == 0 {
        data.target.on_busy_loop();
    }
}

unsafe extern "C" fn on_close<T: OnBusyLoop>(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; both allocations were made
    // in `start` with these exact types and sizes.
    let data = unsafe { Box::from_raw(uv_handle_get_data(handle).cast::<Target<T>>()) };
    if let Err(panic) = crate::barrier::catch(|| drop(data)) {
        crate::barrier::warn(&panic);
    }
    // SAFETY: as above.
    unsafe { free_handle(handle, UV_PREPARE) }
}
