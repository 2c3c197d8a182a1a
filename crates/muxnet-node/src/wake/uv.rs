//! The few libuv functions the addon calls on Node's own loop. The node
//! binary exports them but napi-sys does not bind them, so they are
//! declared here, with the handle memory they need.

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::ptr;

use napi::sys;

extern "C" {
    pub fn uv_handle_size(kind: c_int) -> usize;
    pub fn uv_close(handle: *mut c_void, cb: Option<unsafe extern "C" fn(handle: *mut c_void)>);
    pub fn uv_handle_set_data(handle: *mut c_void, data: *mut c_void);
    pub fn uv_handle_get_data(handle: *const c_void) -> *mut c_void;
    pub fn uv_ref(handle: *mut c_void);
    pub fn uv_unref(handle: *mut c_void);
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

/// The head of libuv's `uv_loop_t` on Unix, up to its table of watched fds
/// (uv.h's public fields, then unix.h's `UV_LOOP_PRIVATE_FIELDS`; the same
/// through the libuv 1.x of Node 20 to 24). libuv exports no call that asks
/// whether an fd is watched, so the table is read as `uv__fd_exists` does.
#[repr(C)]
struct LoopHead {
    data: *mut c_void,
    active_handles: c_uint,
    handle_queue: [*mut c_void; 2],
    active_reqs: *mut c_void,
    internal_fields: *mut c_void,
    stop_flag: c_uint,
    flags: c_ulong,
    backend_fd: c_int,
    pending_queue: [*mut c_void; 2],
    watcher_queue: [*mut c_void; 2],
    watchers: *const *const c_void,
    nwatchers: c_uint,
}

/// Whether one of Node's own handles (a node:net socket or server, a
/// node:dgram socket...) watches `fd` on `env`'s loop: closing that fd
/// under it would make libuv abort the process at its next poll.
pub fn libuv_watches(env: sys::napi_env, fd: c_int) -> napi::Result<bool> {
    let head = uv_loop(env)?.cast::<LoopHead>();
    let Ok(at) = usize::try_from(fd) else { return Ok(false) };
    // SAFETY: `head` is Node's live loop of this thread, laid out as
    // `LoopHead` at its start; `watchers` has `nwatchers` entries.
    Ok(unsafe { at < (*head).nwatchers as usize && !(*(*head).watchers.add(at)).is_null() })
}
