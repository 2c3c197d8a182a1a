//! The few libuv functions the addon calls on Node's own loop. The node
//! binary exports them but napi-sys does not bind them, so they are
//! declared here, with the handle memory they need.

use std::ffi::{c_int, c_void};
use std::ptr;

use napi::sys;

extern "C" {
    pub fn uv_handle_size(kind: c_int) -> usize;
    pub fn uv_close(handle: *mut c_void, cb: Option<unsafe extern "C" fn(handle: *mut c_void)>);
    pub fn uv_handle_set_data(handle: *mut c_void, data: *mut c_void);
    pub fn uv_handle_get_data(handle: *const c_void) -> *mut c_void;
}

/// `env`'s libuv loop.
pub fn uv_loop(env: sys::napi_env) -> napi::Result<*mut c_void> {
    let mut uv_loop = ptr::null_mut();
    // SAFETY: `env` is live on this thread; out-pointer valid.
    if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok {
        return Err(napi::Error::from_reason("napi_get_uv_event_loop failed"));
    }
    Ok(uv_loop.cast())
}

/// Zeroed memory for a handle of `kind` (a `uv_handle_type`), owned by
/// libuv once initialised and freed by [`free_handle`] in its close callback.
pub fn alloc_handle(kind: c_int) -> *mut c_void {
    // SAFETY: uv_handle_size is a pure query.
    let size = unsafe { uv_handle_size(kind) };
    Box::into_raw(vec![0u8; size].into_boxed_slice()).cast()
}

/// Frees what [`alloc_handle`] gave for `kind`.
///
/// # Safety
/// `handle` came from `alloc_handle(kind)` and libuv is done with it (never
/// initialised, or its close callback is running).
pub unsafe fn free_handle(handle: *mut c_void, kind: c_int) {
    // SAFETY: the caller's promise; the size is the one allocated.
    unsafe { drop(Box::from_raw(ptr::slice_from_raw_parts_mut(handle.cast::<u8>(), uv_handle_size(kind)))) }
}
