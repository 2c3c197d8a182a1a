//! Addresses across the boundary: IP text and port in, `{ address,
//! family, port }` out, as node:net shows them.

use std::io;
use std::net::{IpAddr, SocketAddr};

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
            address: addr.ip().to_string(),
            family: if addr.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
            port: addr.port() as u32,
        }
    }
}

pub fn parse_addr(host: &str, port: u32) -> io::Result<SocketAddr> {
    let ip: IpAddr = host.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IP address"))?;
    let port = u16::try_from(port).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "port out of range"))?;
    Ok(SocketAddr::new(ip, port))
}
