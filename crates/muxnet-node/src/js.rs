//! The few raw Node-API calls the hot path needs, each behind a safe
//! wrapper: persistent references, buffers Rust reads into, and calling
//! JavaScript from a libuv callback the way Node calls its own callbacks.
//!
//! Every function here must run on the JS thread of `env`; the binding
//! only calls them from `#[napi]` methods and from libuv callbacks of that
//! env's loop.

use std::ffi::c_void;
use std::ptr;

use napi::sys;

pub type Env = sys::napi_env;
pub type Value = sys::napi_value;

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    match status {
        sys::Status::napi_ok => Ok(()),
        // What Node answers once the env can no longer run JS (a worker
        // being terminated), or while an exception is pending.
        sys::Status::napi_pending_exception => Err(napi::Error::new(napi::Status::PendingException, format!("{what}: JS cannot run"))),
        _ => Err(napi::Error::from_reason(format!("{what} failed (napi status {status})"))),
    }
}

/// A strong reference that keeps a JS value alive across turns.
pub struct Persistent {
    env: Env,
    raw: sys::napi_ref,
}

impl Persistent {
    pub fn new(env: Env, value: Value) -> napi::Result<Persistent> {
        let mut raw = ptr::null_mut();
        // SAFETY: `env` is live on this thread and `value` belongs to it.
        check(unsafe { sys::napi_create_reference(env, value, 1, &mut raw) }, "napi_create_reference")?;
        Ok(Persistent { env, raw })
    }

    pub fn value(&self) -> napi::Result<Value> {
        let mut value = ptr::null_mut();
        // SAFETY: the reference was created in `self.env` and is not deleted.
        check(unsafe { sys::napi_get_reference_value(self.env, self.raw, &mut value) }, "napi_get_reference_value")?;
        Ok(value)
    }
}

impl Drop for Persistent {
    fn drop(&mut self) {
        // SAFETY: created by napi_create_reference in this env; deleted once.
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}

/// A Node `Buffer` that Rust writes into. The pointer is looked up again
/// before every use, because JS code can detach (transfer) the buffer.
pub struct Slab {
    buffer: Persistent,
    len: usize,
    /// Bytes already handed to JS; never written again.
    pub used: usize,
}

/// How many slabs are alive: made and not yet collected (JS may keep a
/// slab alive through views of it long after the reactor moved on).
pub type SlabCount = std::rc::Rc<std::cell::Cell<u64>>;

impl Slab {
    pub fn new(env: Env, len: usize, alive: &SlabCount) -> napi::Result<Slab> {
        let (mut data, mut value) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: `env` is live on this thread; out-pointers are valid.
        check(unsafe { sys::napi_create_buffer(env, len, &mut data, &mut value) }, "napi_create_buffer")?;
        // Counted by its memory, not the Buffer: views of it (all JS is handed) keep the
        // ArrayBuffer alive, not the Buffer object, which goes with the reactor's next slab.
        let (mut kind, mut length, mut memory, mut offset) = (0, 0usize, ptr::null_mut(), 0usize);
        // SAFETY: `value` is the Buffer (a Uint8Array) just made; out-pointers are valid.
        check(
            unsafe { sys::napi_get_typedarray_info(env, value, &mut kind, &mut length, &mut data, &mut memory, &mut offset) },
            "napi_get_typedarray_info",
        )?;
        let counter = Box::into_raw(Box::new(alive.clone()));
        // SAFETY: `memory` is the Buffer's live ArrayBuffer; `counter` stays valid
        // until `slab_collected` frees it, once.
        let added = unsafe { sys::napi_add_finalizer(env, memory, counter.cast(), Some(slab_collected), ptr::null_mut(), ptr::null_mut()) };
        if let Err(e) = check(added, "napi_add_finalizer") {
            // SAFETY: the finalizer was not added: nothing else owns `counter`.
            drop(unsafe { Box::from_raw(counter) });
            return Err(e);
        }
        alive.set(alive.get() + 1);
        Ok(Slab { buffer: Persistent::new(env, value)?, len, used: 0 })
    }

    pub fn value(&self) -> napi::Result<Value> {
        self.buffer.value()
    }

    pub fn free(&self) -> usize {
        self.len - self.used
    }

    /// The whole slab as a Rust slice, or `None` if it was detached.
    ///
    /// The caller must only write past `used` (bytes JS has not seen) and
    /// must not hold the slice across a call into JavaScript.
    pub fn bytes(&mut self) -> napi::Result<Option<&mut [u8]>> {
        let (mut data, mut len) = (ptr::null_mut::<c_void>(), 0usize);
        let value = self.buffer.value()?;
        // SAFETY: `value` is the live Buffer held by our reference.
        check(unsafe { sys::napi_get_buffer_info(self.buffer.env, value, &mut data, &mut len) }, "napi_get_buffer_info")?;
        if data.is_null() || len != self.len {
            return Ok(None);
        }
        // SAFETY: the backing store is `len` bytes, kept alive by our
        // reference, and not moved by V8. We run on the JS thread, so no JS
        // code reads it while the slice lives; JS only ever holds views of
        // bytes below `used`, which the caller does not write.
        Ok(Some(unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), len) }))
    }
}

unsafe extern "C" fn slab_collected(_env: Env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Box made in `Slab::new`; Node-API finalizes once.
    let alive = unsafe { Box::from_raw(data.cast::<SlabCount>()) };
    alive.set(alive.get().saturating_sub(1));
}

/// An `Int32Array` that event records are written into.
pub struct Records {
    array: Persistent,
    len: usize,
}

impl Records {
    pub fn new(env: Env, len: usize) -> napi::Result<Records> {
        let (mut data, mut buffer, mut array) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: `env` is live on this thread; out-pointers are valid.
        unsafe {
            check(sys::napi_create_arraybuffer(env, len * 4, &mut data, &mut buffer), "napi_create_arraybuffer")?;
            check(
                sys::napi_create_typedarray(env, sys::TypedarrayType::int32_array, len, buffer, 0, &mut array),
                "napi_create_typedarray",
            )?;
        }
        Ok(Records { array: Persistent::new(env, array)?, len })
    }

    pub fn capacity(&self) -> usize {
        self.len
    }

    pub fn value(&self) -> napi::Result<Value> {
        self.array.value()
    }

    /// Copies `words` in; `None` if the array was detached.
    pub fn fill(&mut self, words: &[i32]) -> napi::Result<Option<()>> {
        let array = self.array.value()?;
        let (mut ty, mut len, mut data, mut buffer, mut offset) = (0, 0usize, ptr::null_mut::<c_void>(), ptr::null_mut(), 0usize);
        // SAFETY: `array` is the live Int32Array held by our reference.
        check(
            unsafe { sys::napi_get_typedarray_info(self.array.env, array, &mut ty, &mut len, &mut data, &mut buffer, &mut offset) },
            "napi_get_typedarray_info",
        )?;
        if data.is_null() || len != self.len || words.len() > len {
            return Ok(None);
        }
        // SAFETY: `data` points to `len` live, aligned i32s (an Int32Array
        // we created at offset 0) and `words` fits; no JS runs meanwhile.
        unsafe { ptr::copy_nonoverlapping(words.as_ptr(), data.cast::<i32>(), words.len()) };
        Ok(Some(()))
    }
}

/// Closes a handle scope when dropped.
pub struct HandleScope {
    env: Env,
    scope: sys::napi_handle_scope,
}

impl HandleScope {
    /// Needed in libuv callbacks, where Node has opened none.
    pub fn open(env: Env) -> napi::Result<HandleScope> {
        let mut scope = ptr::null_mut();
        // SAFETY: `env` is live on this thread.
        check(unsafe { sys::napi_open_handle_scope(env, &mut scope) }, "napi_open_handle_scope")?;
        Ok(HandleScope { env, scope })
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: opened by `open` on this env, closed once, innermost.
        unsafe { sys::napi_close_handle_scope(self.env, self.scope) };
    }
}

/// An async context so callbacks run like Node's own I/O callbacks:
/// `process.nextTick` and promise jobs run after each, and async_hooks
/// see a resource.
pub struct AsyncContext {
    env: Env,
    context: sys::napi_async_context,
    /// Also the receiver (`this`) of calls: a callback scope needs an object.
    resource: Persistent,
}

impl AsyncContext {
    pub fn new(env: Env, name: &str) -> napi::Result<AsyncContext> {
        let (mut resource, mut js_name, mut context) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: `env` is live on this thread; `name` is valid UTF-8 of
        // the given length; out-pointers are valid.
        unsafe {
            check(sys::napi_create_object(env, &mut resource), "napi_create_object")?;
            check(sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut js_name), "napi_create_string_utf8")?;
            check(sys::napi_async_init(env, resource, js_name, &mut context), "napi_async_init")?;
        }
        Ok(AsyncContext { env, context, resource: Persistent::new(env, resource)? })
    }

    /// Calls `func(...args)` inside a callback scope: what it returned, or
    /// `None` if it threw. A throw is handed to
    /// `process.on('uncaughtException')` as Node does for its own
    /// callbacks; it never unwinds into the caller. The ticks and promise
    /// jobs queued run as the scope closes.
    pub fn call(&self, func: Value, args: &[Value]) -> napi::Result<Option<Value>> {
        let env = self.env;
        let recv = self.resource.value()?;
        let (mut scope, mut result) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: all values belong to `env`, which is live on this thread;
        // `args` outlives the call; the scope opened is closed below, in
        // this frame, with nothing opened after it still open.
        unsafe {
            check(sys::napi_open_callback_scope(env, recv, self.context, &mut scope), "napi_open_callback_scope")?;
            let status = sys::napi_call_function(env, recv, func, args.len(), args.as_ptr(), &mut result);
            let mut pending = false;
            sys::napi_is_exception_pending(env, &mut pending);
            if pending {
                let mut error = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut error);
                // Inside the scope, as Node reports its own callbacks' throws:
                // its handler drops the async ids a throwing tick left
                // pushed, which the scope's close would find corrupt.
                report(env, error);
            }
            check(sys::napi_close_callback_scope(env, scope), "napi_close_callback_scope")?;
            if pending {
                return Ok(None);
            }
            check(status, "napi_call_function").map(|()| Some(result))
        }
    }
}

impl Drop for AsyncContext {
    fn drop(&mut self) {
        // SAFETY: created by napi_async_init on this env; destroyed once.
        unsafe { sys::napi_async_destroy(self.env, self.context) };
    }
}

pub fn int32(env: Env, n: i32) -> napi::Result<Value> {
    let mut value = ptr::null_mut();
    // SAFETY: `env` is live on this thread.
    check(unsafe { sys::napi_create_int32(env, n, &mut value) }, "napi_create_int32")?;
    Ok(value)
}

/// Whether `value` is the boolean `true`.
pub fn is_true(env: Env, value: Value) -> bool {
    let mut on = false;
    // SAFETY: `env` is live on this thread; `value` belongs to it. A value
    // that is not a boolean leaves `on` false.
    unsafe { sys::napi_get_value_bool(env, value, &mut on) };
    on
}

pub fn undefined(env: Env) -> napi::Result<Value> {
    let mut value = ptr::null_mut();
    // SAFETY: `env` is live on this thread.
    check(unsafe { sys::napi_get_undefined(env, &mut value) }, "napi_get_undefined")?;
    Ok(value)
}

/// A JS array of strings (the peers of this turn's datagrams).
pub fn string_array(env: Env, items: &[String]) -> napi::Result<Value> {
    let mut array = ptr::null_mut();
    // SAFETY: `env` is live on this thread; each string is valid UTF-8 of
    // the given length.
    unsafe {
        check(sys::napi_create_array_with_length(env, items.len(), &mut array), "napi_create_array")?;
        for (i, s) in items.iter().enumerate() {
            let mut value = ptr::null_mut();
            check(sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut value), "napi_create_string_utf8")?;
            check(sys::napi_set_element(env, array, i as u32, value), "napi_set_element")?;
        }
    }
    Ok(array)
}

/// A JS function calling `callback` with `data`; `finalize` frees `data`
/// once the function is garbage-collected.
pub fn function(
    env: Env,
    name: &str,
    callback: sys::napi_callback,
    data: *mut c_void,
    finalize: sys::napi_finalize,
) -> napi::Result<Value> {
    let mut func = ptr::null_mut();
    // SAFETY: `env` is live on this thread; `name` is valid UTF-8 of the
    // given length; `data` stays valid until `finalize` runs.
    unsafe {
        check(
            sys::napi_create_function(env, name.as_ptr().cast(), name.len() as isize, callback, data, &mut func),
            "napi_create_function",
        )?;
        check(sys::napi_add_finalizer(env, func, data, finalize, ptr::null_mut(), ptr::null_mut()), "napi_add_finalizer")?;
    }
    Ok(func)
}

/// The first `N` arguments of a call (missing ones are `undefined`) and
/// the function's `data`.
///
/// # Safety
/// `env` and `info` must be those of a callback running now.
pub unsafe fn call_args<const N: usize>(env: Env, info: sys::napi_callback_info) -> ([Value; N], *mut c_void) {
    let (mut args, mut argc, mut data) = ([ptr::null_mut(); N], N, ptr::null_mut());
    // SAFETY: per this function's contract; `args` has room for `argc`.
    unsafe { sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), &mut data) };
    (args, data)
}

pub fn u32_of(env: Env, value: Value) -> Option<u32> {
    let mut n = 0;
    // SAFETY: `env` is live on this thread; `value` belongs to it.
    (unsafe { sys::napi_get_value_uint32(env, value, &mut n) } == sys::Status::napi_ok).then_some(n)
}

/// A number as a token (see `records::token_of`); `None` if not a number.
pub fn token_of(env: Env, value: Value) -> Option<muxnet_core::Token> {
    let mut n = 0.0;
    // SAFETY: `env` is live on this thread; `value` belongs to it.
    (unsafe { sys::napi_get_value_double(env, value, &mut n) } == sys::Status::napi_ok).then(|| crate::records::token_of(n))
}

/// The bytes of a `Uint8Array` (a `Buffer` is one).
///
/// # Safety
/// The slice must be dropped before any JavaScript runs: JS could detach
/// or resize the buffer.
pub unsafe fn bytes_of<'a>(env: Env, value: Value) -> Option<&'a [u8]> {
    let (mut ty, mut len, mut data, mut buffer, mut offset) = (0, 0usize, ptr::null_mut::<c_void>(), ptr::null_mut(), 0usize);
    let mut is_typedarray = false;
    // SAFETY: `env` is live on this thread; `value` belongs to it.
    unsafe {
        sys::napi_is_typedarray(env, value, &mut is_typedarray);
        if !is_typedarray
            || sys::napi_get_typedarray_info(env, value, &mut ty, &mut len, &mut data, &mut buffer, &mut offset) != sys::Status::napi_ok
        {
            return None;
        }
    }
    if ty != sys::TypedarrayType::uint8_array {
        return None;
    }
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: N-API gives the first element's address (offset applied) of
    // a live array of `len` bytes; the caller keeps JS from running while
    // the slice lives.
    (!data.is_null()).then(|| unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

pub fn number(env: Env, n: f64) -> Value {
    let mut value = ptr::null_mut();
    // SAFETY: `env` is live on this thread.
    unsafe { sys::napi_create_double(env, n, &mut value) };
    value
}

/// An `Error` with `message` and a `code` property.
fn coded_error(env: Env, message: &str, code: &str) -> Value {
    let (mut msg, mut code_value, mut error) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: `env` is live on this thread; the strings are valid UTF-8 of
    // the given lengths; out-pointers are valid.
    unsafe {
        sys::napi_create_string_utf8(env, message.as_ptr().cast(), message.len() as isize, &mut msg);
        sys::napi_create_string_utf8(env, code.as_ptr().cast(), code.len() as isize, &mut code_value);
        sys::napi_create_error(env, code_value, msg, &mut error);
    }
    error
}

/// Throws an `Error` with `code` from a Node-API callback.
pub fn throw_error(env: Env, message: &str, code: &str) {
    let error = coded_error(env, message, code);
    // SAFETY: `env` is live on this thread; `error` belongs to it.
    unsafe { sys::napi_throw(env, error) };
}

/// Hands an `Error` with `code` to `process.on('uncaughtException')`, as
/// Node does for an error no caller can catch (in a libuv callback).
pub fn raise(env: Env, message: &str, code: &str) {
    report(env, coded_error(env, message, code));
}

/// Hands `error` to `process.on('uncaughtException')` (or ends the process,
/// with none), as Node does for a throw from one of its callbacks.
pub fn report(env: Env, error: Value) {
    // SAFETY: `env` is live on this thread; `error` belongs to it.
    unsafe { sys::napi_fatal_exception(env, error) };
}

/// Throws a `TypeError` with code `ERR_INVALID_ARG_TYPE`, as Node does
/// for an argument of the wrong type.
pub fn throw_type_error(env: Env, message: &str) {
    let msg = std::ffi::CString::new(message).unwrap_or_default();
    // SAFETY: `env` is live on this thread; both strings are NUL-terminated.
    unsafe { sys::napi_throw_type_error(env, c"ERR_INVALID_ARG_TYPE".as_ptr(), msg.as_ptr()) };
}

pub fn type_of(env: Env, value: Value) -> sys::napi_valuetype {
    let mut ty = sys::ValueType::napi_undefined;
    // SAFETY: `env` is live on this thread; `value` belongs to it.
    unsafe { sys::napi_typeof(env, value, &mut ty) };
    ty
}

/// A JS string as UTF-8 in `buf`; `None` if it is not a string or does
/// not fit.
pub fn str_of(env: Env, value: Value, buf: &mut [u8]) -> Option<&str> {
    let mut len = 0;
    // SAFETY: `env` is live on this thread; `buf` has room for `buf.len()`
    // bytes including the NUL Node-API writes.
    let status = unsafe { sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    if status != sys::Status::napi_ok || len + 1 >= buf.len() {
        return None;
    }
    std::str::from_utf8(&buf[..len]).ok()
}
