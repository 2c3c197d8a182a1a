//! One libuv `uv_poll_t` on Node's own loop, watching one fd for
//! readability (the poll functions declared here, the rest in [`super::uv`]).

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

use napi::sys;

const UV_POLL: c_int = 8; // uv_handle_type
const UV_READABLE: c_int = 1;

type PollCallback = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);

extern "C" {
    fn uv_poll_init(uv_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCallback) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
}

use super::uv::{alloc_handle, free_handle, uv_close, uv_handle_get_data, uv_handle_set_data, uv_loop, uv_ref, uv_unref};
use super::OnReadable;

/// A started `uv_poll_t` whose callback reaches `T`. The handle memory
/// belongs to libuv until its close callback has run, so it is freed
/// there, never in `Drop`.
pub struct FdWatch<T: OnReadable> {
    handle: *mut c_void,
    _target: std::marker::PhantomData<T>,
}

impl<T: OnReadable> FdWatch<T> {
    /// Watches `fd` on `env`'s loop. `target` is leaked into the handle
    /// and dropped after the handle closes.
    pub fn start(env: sys::napi_env, fd: RawFd, target: Box<T>) -> napi::Result<FdWatch<T>> {
        let uv_loop = uv_loop(env)?;
        let handle = alloc_handle(UV_POLL);
        // SAFETY: `handle` is `size` writable bytes, as libuv asked for;
        // the loop is Node's, running on this thread. On failure the
        // handle was never initialised and is freed here.
        unsafe {
            let r = uv_poll_init(uv_loop, handle, fd);
            if r != 0 {
                free_handle(handle, UV_POLL);
                return Err(napi::Error::from_reason(format!("uv_poll_init failed ({r})")));
            }
            uv_handle_set_data(handle, Box::into_raw(target).cast());
            uv_poll_start(handle, UV_READABLE, on_poll::<T>);
        }
        Ok(FdWatch { handle, _target: std::marker::PhantomData })
    }

    /// Whether the watch keeps the Node process alive.
    pub fn set_ref(&self, on: bool) {
        // SAFETY: the handle is initialised and not yet closed (`close`
        // consumes self).
        unsafe {
            if on {
                uv_ref(self.handle)
            } else {
                uv_unref(self.handle)
            }
        }
    }

    pub fn close(self) {
        // SAFETY: the handle is initialised and closed exactly once here;
        // `on_close` frees it and its target afterwards.
        unsafe {
            uv_poll_stop(self.handle);
            uv_close(self.handle, Some(on_close::<T>));
        }
    }
}

unsafe extern "C" fn on_poll<T: OnReadable>(handle: *mut c_void, _status: c_int, _events: c_int) {
    // SAFETY: the data pointer was set from a Box<T> in `start` and is
    // only freed in `on_close`, after which libuv calls no more callbacks.
    let target = unsafe { &*uv_handle_get_data(handle).cast::<T>() };
    // A poll error (EBADF after a close) is handled like readiness: the
    // turn that follows finds out what is wrong.
    target.on_readable();
}

unsafe extern "C" fn on_close<T: OnReadable>(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; both allocations were made
    // in `start` with these exact types and sizes.
    let target = unsafe { Box::from_raw(uv_handle_get_data(handle).cast::<T>()) };
    // Dropping the target drops the reactor (closing its sockets): no
    // panic may unwind into libuv.
    if let Err(panic) = crate::barrier::catch(|| drop(target)) {
        crate::barrier::warn(&panic);
    }
    // SAFETY: as above.
    unsafe { free_handle(handle, UV_POLL) }
}
