//! `mysql`: run a query that returns one number, against MySQL or MariaDB.
//!
//! The client is the small part of the MySQL wire protocol the scaler needs, written here
//! instead of pulling a driver crate: the v10 handshake, `mysql_native_password` (MariaDB's and
//! MySQL 5.7's default) and the fast path of `caching_sha2_password` (MySQL 8), `COM_QUERY`, and
//! the text result set's first column of the first row. TLS is not supported (a server that
//! requires it answers with an error, reported as such).
//!
//! The connection comes from `connectionString` (the Go driver's DSN, as KEDA takes it:
//! `user:password@tcp(host:3306)/db`) or from `host`/`port`/`username`/`password`/`dbName`.

use std::time::Duration;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::Mysql;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub user: String,
    pub password: String,
    /// `host:port`
    pub addr: String,
    pub db: String,
}

impl Dsn {
    /// The Go MySQL driver's DSN: `[user[:password]@][tcp[(addr)]]/dbname[?params]`.
    pub fn parse(s: &str) -> Result<Dsn, String> {
        let (creds, rest) = match s.rfind('@') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => ("", s),
        };
        let (user, password) = match creds.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (creds.to_string(), String::new()),
        };
        let slash = rest
            .rfind('/')
            .ok_or_else(|| "expected user:password@tcp(host:port)/dbname".to_string())?;
        let (net, db) = (&rest[..slash], &rest[slash + 1..]);
        let db = db.split('?').next().unwrap_or("").to_string();
        let addr = match net.split_once('(') {
            Some((proto, a)) => {
                if proto != "tcp" {
                    return Err(format!(
                        "network {proto:?} is not supported by kedge's mysql scaler; use tcp"
                    ));
                }
                a.trim_end_matches(')').to_string()
            }
            None if net.is_empty() || net == "tcp" => "127.0.0.1:3306".to_string(),
            None => return Err(format!("unexpected network {net:?}")),
        };
        let addr = if addr.contains(':') {
            addr
        } else {
            format!("{addr}:3306")
        };
        Ok(Dsn {
            user,
            password,
            addr,
            db,
        })
    }
}

pub struct MysqlScaler {
    dsn: Dsn,
    cfg: Mysql,
    /// Held across `.await` (the query), hence tokio's mutex.
    conn: Mutex<Option<Connection>>,
}

impl MysqlScaler {
    pub fn new(cfg: Mysql, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScalerError> {
        let resolve = |s: &model::keda::triggers::Source, what: &str| {
            s.resolve(env)
                .ok_or_else(|| ScalerError::Config(format!("{what} {s:?} could not be resolved")))
        };
        let dsn = match &cfg.connection_string {
            Some(src) => Dsn::parse(&resolve(src, "connectionString")?)
                .map_err(|e| ScalerError::Config(format!("connectionString: {e}")))?,
            None => {
                let host = cfg.host.clone().unwrap_or_else(|| "127.0.0.1".into());
                let port = cfg.port.clone().unwrap_or_else(|| "3306".into());
                Dsn {
                    user: match &cfg.username {
                        Some(u) => resolve(u, "username")?,
                        None => String::new(),
                    },
                    password: match &cfg.password {
                        Some(p) => resolve(p, "password")?,
                        None => String::new(),
                    },
                    addr: format!("{host}:{port}"),
                    db: cfg.db_name.clone().unwrap_or_default(),
                }
            }
        };
        Ok(MysqlScaler {
            dsn,
            cfg,
            conn: Mutex::new(None),
        })
    }
}

impl Scaler for MysqlScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let mut guard = self.conn.lock().await;
            if guard.is_none() {
                let c = tokio::time::timeout(Duration::from_secs(10), Connection::open(&self.dsn))
                    .await
                    .map_err(|_| {
                        ScalerError::Connect(format!(
                            "mysql {}: no answer within 10s",
                            self.dsn.addr
                        ))
                    })??;
                *guard = Some(c);
            }
            let Some(conn) = guard.as_mut() else {
                return Err(ScalerError::Connect("mysql: no connection".into()));
            };
            let r =
                tokio::time::timeout(Duration::from_secs(30), conn.query_first(&self.cfg.query))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ScalerError::Connect("mysql: no answer within 30s".into()))
                    });
            let cell = match r {
                Ok(c) => c,
                Err(e) => {
                    if e.metric_label() == "connect" {
                        *guard = None;
                    }
                    return Err(e);
                }
            };
            let v = match cell {
                None => 0.0, // SQL NULL
                Some(t) => t.trim().parse::<f64>().map_err(|_| {
                    ScalerError::Parse(format!("the query returned {t:?}, not a number"))
                })?,
            };
            Ok(MetricSample::with_threshold(
                v,
                self.cfg.activation_query_value,
            ))
        })
    }
}

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;

/// One authenticated connection.
pub struct Connection {
    stream: TcpStream,
    seq: u8,
}

fn conn_err(e: std::io::Error) -> ScalerError {
    ScalerError::Connect(format!("mysql: {e}"))
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
pub fn native_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password`'s scramble: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
pub fn caching_sha2(password: &str, scramble: &[u8]) -> Vec<u8> {
    use sha2::Sha256;
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha256::digest(password.as_bytes());
    let h2 = Sha256::digest(h1);
    let mut h = Sha256::new();
    h.update(h2);
    h.update(scramble);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn server_error(p: &[u8]) -> ScalerError {
    // ERR: 0xFF, code (2), '#', state (5), message.
    let code = p
        .get(1..3)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let msg = if p.get(3) == Some(&b'#') {
        p.get(9..).unwrap_or_default()
    } else {
        p.get(3..).unwrap_or_default()
    };
    ScalerError::Query(format!(
        "mysql error {code}: {}",
        String::from_utf8_lossy(msg)
    ))
}

/// A length-encoded integer at `p[*i]`.
fn lenenc(p: &[u8], i: &mut usize) -> Option<u64> {
    let first = *p.get(*i)?;
    *i += 1;
    let n = match first {
        0..=0xFA => return Some(u64::from(first)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let bytes = p.get(*i..*i + n)?;
    *i += n;
    let mut v = 0u64;
    for (k, b) in bytes.iter().enumerate() {
        v |= u64::from(*b) << (8 * k);
    }
    Some(v)
}

impl Connection {
    pub async fn open(dsn: &Dsn) -> Result<Connection, ScalerError> {
        let stream = TcpStream::connect(&dsn.addr)
            .await
            .map_err(|e| ScalerError::Connect(format!("mysql {}: {e}", dsn.addr)))?;
        let mut c = Connection { stream, seq: 0 };
        let hs = c.read_packet().await?;
        if hs.first() == Some(&0xFF) {
            return Err(server_error(&hs));
        }
        if hs.first() != Some(&10) {
            return Err(ScalerError::Connect(format!(
                "mysql {}: unsupported handshake version {:?}",
                dsn.addr,
                hs.first()
            )));
        }
        // protocol version, server version\0, connection id (4), scramble part 1 (8), filler,
        // capabilities low (2), charset, status (2), capabilities high (2), scramble length,
        // reserved (10), scramble part 2, plugin name\0.
        let mut i = 1 + hs[1..].iter().position(|b| *b == 0).unwrap_or(0) + 1 + 4;
        let bad = || ScalerError::Connect("mysql: short handshake".into());
        let mut scramble = hs.get(i..i + 8).ok_or_else(bad)?.to_vec();
        i += 8 + 1 + 2 + 1 + 2 + 2;
        let scramble_len = *hs.get(i).ok_or_else(bad)? as usize;
        i += 1 + 10;
        let part2 = scramble_len.saturating_sub(8).max(13);
        if let Some(p2) = hs.get(i..(i + part2).min(hs.len())) {
            scramble.extend(p2.iter().take_while(|b| **b != 0));
            i += part2;
        }
        let plugin: String = hs
            .get(i..)
            .map(|b| {
                String::from_utf8_lossy(&b[..b.iter().position(|x| *x == 0).unwrap_or(b.len())])
                    .into_owned()
            })
            .unwrap_or_else(|| "mysql_native_password".into());
        let auth = c.auth_response(&plugin, &dsn.password, &scramble)?;
        let mut caps = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH;
        if !dsn.db.is_empty() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(dsn.user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        if !dsn.db.is_empty() {
            p.extend_from_slice(dsn.db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        c.write_packet(&p).await?;
        loop {
            let r = c.read_packet().await?;
            match r.first() {
                Some(0x00) => return Ok(c),
                Some(0xFF) => return Err(server_error(&r)),
                // Auth switch: plugin name\0, new scramble.
                Some(0xFE) => {
                    let end = r[1..].iter().position(|b| *b == 0).unwrap_or(r.len() - 1) + 1;
                    let plugin = String::from_utf8_lossy(&r[1..end]).into_owned();
                    let scramble: Vec<u8> = r
                        .get(end + 1..)
                        .unwrap_or_default()
                        .iter()
                        .copied()
                        .take_while(|b| *b != 0)
                        .collect();
                    let auth = c.auth_response(&plugin, &dsn.password, &scramble)?;
                    c.write_packet(&auth).await?;
                }
                // caching_sha2_password: 0x01 0x03 = fast auth done (OK follows); 0x01 0x04 =
                // full authentication, which needs TLS or the server's RSA key.
                Some(0x01) if r.get(1) == Some(&0x03) => continue,
                Some(0x01) => {
                    return Err(ScalerError::Connect(
                        "mysql: the server asks for caching_sha2_password full authentication (TLS or RSA), which kedge's mysql scaler does not support; use mysql_native_password for this user".into(),
                    ));
                }
                other => {
                    return Err(ScalerError::Connect(format!(
                        "mysql: unexpected authentication answer {other:?}"
                    )));
                }
            }
        }
    }

    fn auth_response(
        &self,
        plugin: &str,
        password: &str,
        scramble: &[u8],
    ) -> Result<Vec<u8>, ScalerError> {
        match plugin {
            "mysql_native_password" | "" => Ok(native_password(password, scramble)),
            "caching_sha2_password" => Ok(caching_sha2(password, scramble)),
            other => Err(ScalerError::Config(format!(
                "mysql: authentication plugin {other:?} is not supported by kedge's mysql scaler (use mysql_native_password)"
            ))),
        }
    }

    /// Run `sql` (COM_QUERY) and return the first column of the first row (`None` for NULL).
    pub async fn query_first(&mut self, sql: &str) -> Result<Option<String>, ScalerError> {
        self.seq = 0;
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.write_packet(&p).await?;
        let head = self.read_packet().await?;
        match head.first() {
            Some(0xFF) => return Err(server_error(&head)),
            Some(0x00) => return Err(ScalerError::Parse("the query returned no rows".into())),
            _ => {}
        }
        let mut i = 0;
        let columns = lenenc(&head, &mut i)
            .ok_or_else(|| ScalerError::Parse("mysql: bad column count".into()))?;
        for _ in 0..columns {
            self.read_packet().await?;
        }
        // EOF after the column definitions (no CLIENT_DEPRECATE_EOF).
        let eof = self.read_packet().await?;
        if eof.first() != Some(&0xFE) {
            return Err(ScalerError::Parse(
                "mysql: expected EOF after columns".into(),
            ));
        }
        let mut first: Option<Option<String>> = None;
        loop {
            let row = self.read_packet().await?;
            match row.first() {
                Some(0xFE) if row.len() < 9 => break,
                Some(0xFF) => return Err(server_error(&row)),
                Some(0xFB) if first.is_none() => first = Some(None),
                _ if first.is_none() => {
                    let mut i = 0;
                    let n = lenenc(&row, &mut i)
                        .ok_or_else(|| ScalerError::Parse("mysql: bad row".into()))?
                        as usize;
                    let v = row
                        .get(i..i + n)
                        .ok_or_else(|| ScalerError::Parse("mysql: short row".into()))?;
                    first = Some(Some(String::from_utf8_lossy(v).into_owned()));
                }
                _ => {}
            }
        }
        first.ok_or_else(|| ScalerError::Parse("the query returned no rows".into()))
    }

    async fn write_packet(&mut self, payload: &[u8]) -> Result<(), ScalerError> {
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(4 + payload.len());
        f.extend_from_slice(&len.to_le_bytes()[..3]);
        f.push(self.seq);
        self.seq = self.seq.wrapping_add(1);
        f.extend_from_slice(payload);
        self.stream.write_all(&f).await.map_err(conn_err)
    }

    async fn read_packet(&mut self) -> Result<Vec<u8>, ScalerError> {
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head).await.map_err(conn_err)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        self.seq = head[3].wrapping_add(1);
        let mut p = vec![0u8; len];
        self.stream.read_exact(&mut p).await.map_err(conn_err)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_driver_dsn() {
        assert_eq!(
            Dsn::parse("root:p@ss@tcp(mysql.ns:3307)/tasks?parseTime=true").unwrap(),
            Dsn {
                user: "root".into(),
                password: "p@ss".into(),
                addr: "mysql.ns:3307".into(),
                db: "tasks".into()
            }
        );
        assert_eq!(Dsn::parse("u@tcp(h)/d").unwrap().addr, "h:3306");
        assert!(Dsn::parse("u@unix(/tmp/s)/d").is_err());
    }
}
