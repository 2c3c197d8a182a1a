//! Addresses across the boundary: IP text and port in, `{ address,
//! family, port }` out, as node:net shows them. An IPv6 address may carry
//! a zone (`fe80::1%eth0`), read and written as libuv and Node do.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};

use muxnet_core::MulticastInterface;

use napi_derive::napi;

#[napi(object)]
pub struct SocketAddress {
    pub address: String,
    pub family: String,
    pub port: u32,
}

impl From<SocketAddr> for SocketAddress {
    fn from(addr: SocketAddr) -> SocketAddress {
        SocketAddress {
            address: ip_text(&addr),
            family: if addr.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
            port: addr.port() as u32,
        }
    }
}

/// The address as Node shows it: a link-local IPv6 address with a scope
/// gets `%` and the interface's name (its index if it has none).
pub fn ip_text(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) if v6.scope_id() > 0 && v6.ip().is_unicast_link_local() => {
            format!("{}%{}", v6.ip(), interface_name(v6.scope_id()))
        }
        _ => addr.ip().to_string(),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// A port given as a number: 0 to 65 535.
pub fn port_number(port: u32) -> io::Result<u16> {
    u16::try_from(port).map_err(|_| invalid("port out of range"))
}

/// `host:port` as libuv parses it: an IPv4 address, or an IPv6 one with
/// an optional `%zone` naming the interface (on Windows, its index). An
/// unknown interface is scope 0, as libuv ignores it.
pub fn parse_addr(host: &str, port: u32) -> io::Result<SocketAddr> {
    let port = port_number(port)?;
    let (ip, zone) = match host.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (host, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| invalid("not an IP address"))?;
    match (ip, zone) {
        (IpAddr::V6(v6), Some(zone)) => Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, interface_index(zone)))),
        (IpAddr::V4(_), Some(_)) => Err(invalid("an IPv4 address has no zone")),
        (ip, None) => Ok(SocketAddr::new(ip, port)),
    }
}

/// A multicast interface as libuv reads one: an IPv4 address, or an IPv6
/// one whose zone names the interface.
pub fn parse_interface(text: &str) -> io::Result<MulticastInterface> {
    Ok(match parse_addr(text, 0)? {
        SocketAddr::V4(v4) => MulticastInterface::V4(*v4.ip()),
        SocketAddr::V6(v6) => MulticastInterface::V6(v6.scope_id()),
    })
}

/// A membership's interface for a group of the given family: of the same
/// family, else EINVAL as in libuv; none is the kernel's choice.
pub fn group_interface(ipv6: bool, text: Option<&str>) -> io::Result<MulticastInterface> {
    match text.map(parse_interface).transpose()? {
        None if ipv6 => Ok(MulticastInterface::V6(0)),
        None => Ok(MulticastInterface::V4(Ipv4Addr::UNSPECIFIED)),
        Some(interface @ MulticastInterface::V6(_)) if ipv6 => Ok(interface),
        Some(interface @ MulticastInterface::V4(_)) if !ipv6 => Ok(interface),
        Some(_) => Err(invalid("the interface is not of the group's family")),
    }
}

#[cfg(unix)]
fn interface_index(name: &str) -> u32 {
    let Ok(name) = std::ffi::CString::new(name) else { return 0 };
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

#[cfg(windows)]
fn interface_index(zone: &str) -> u32 {
    zone.parse().unwrap_or(0)
}

#[cfg(unix)]
fn interface_name(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if name.is_null() {
        return index.to_string();
    }
    // SAFETY: on success `buf` holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

#[cfg(windows)]
fn interface_name(index: u32) -> String {
    index.to_string()
}
