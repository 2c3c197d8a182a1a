//! A call in libuv's closing phase of the current loop turn: where
//! node:net's handles run their close callbacks (and its sockets emit
//! `'close'`), after the turn's `setImmediate` callbacks and before the
//! next turn's timers. A fresh idle handle, closed at once, is the way in.

use std::ffi::{c_int, c_void};

use napi::sys;

use super::uv::{alloc_handle, free_handle, uv_close, uv_handle_get_data, uv_handle_set_data, uv_loop};

const UV_IDLE: c_int = 6; // uv_handle_type

extern "C" {
    fn uv_idle_init(uv_loop: *mut c_void, handle: *mut c_void) -> c_int;
}

type Call = Box<dyn FnOnce()>;

/// Runs `call` on `env`'s loop in this turn's closing phase (the next
/// turn's, if the loop is in its closing phase now, as libuv does for a
/// handle closed there).
pub fn in_closing_phase(env: sys::napi_env, call: Call) -> napi::Result<()> {
    let uv_loop = uv_loop(env)?;
    let handle = alloc_handle(UV_IDLE);
    // SAFETY: `handle` is as many writable bytes as libuv asked for; the
    // loop is Node's, running on this thread. Initialised, the handle is
    // closed at once and freed in `on_close` with the call it carries;
    // not initialised, it is freed here.
    unsafe {
        let r = uv_idle_init(uv_loop, handle);
        if r != 0 {
            free_handle(handle, UV_IDLE);
            return Err(napi::Error::from_reason(format!("uv_idle_init failed ({r})")));
        }
        uv_handle_set_data(handle, Box::into_raw(Box::new(call)).cast());
        uv_close(handle, Some(on_close));
    }
    Ok(())
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: the data is the Box<Call> set in `in_closing_phase`, taken
    // once, here; libuv is done with the handle.
    let call = unsafe { Box::from_raw(uv_handle_get_data(handle).cast::<Call>()) };
    // SAFETY: as above.
    unsafe { free_handle(handle, UV_IDLE) };
    // No panic may unwind into libuv.
    if let Err(panic) = crate::barrier::catch(call) {
        crate::barrier::warn(&panic);
    }
}
