//! One authenticated SMB 3 session with the SAMR pipe bound on it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use smb::connection::{AuthMethodsConfig, EncryptionMode};
use smb::{
    Connection, ConnectionConfig, Dialect, FileCreateArgs, Guid, IoctlBuffer, Pipe,
    PipeTransceiveRequest, Resource, Session, Tree, UncPath,
};

use crate::config::{AccountName, TransportSecurity};
use crate::error::{Call, Error};
use crate::rpc::{RpcChannel, SAMR, Transceive};
use crate::session_key::{self, SessionKey};
use crate::status::NtStatus;
use crate::transport::{FrameTransport, Tap};

/// Where and how to connect.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: TransportSecurity,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

/// Maps an error of the `smb` crate at `call` to ours, keeping NT_STATUS values.
pub(crate) fn smb_error(call: Call, e: smb::Error) -> Error {
    match e {
        smb::Error::UnexpectedMessageStatus(s) | smb::Error::ReceivedErrorMessage(s, _) => {
            Error::Status {
                call,
                status: NtStatus::new(s),
            }
        }
        smb::Error::OperationTimeout(_, after) => Error::Timeout {
            what: "SMB request",
            after,
        },
        smb::Error::TransportError(smb::transport::TransportError::Timeout(after)) => {
            Error::Timeout {
                what: "SMB connect",
                after,
            }
        }
        other => Error::Smb(format!("{call}: {other}")),
    }
}

async fn within<T>(
    limit: Duration,
    what: &'static str,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| Error::Timeout { what, after: limit })?
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let connect_err = |reason: String| Error::Connect {
        host: host.to_owned(),
        port,
        reason,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| connect_err(e.to_string()))?
        .next()
        .ok_or_else(|| connect_err("the name resolves to no address".into()))
}

/// The named pipe under the RPC channel: every PDU in one FSCTL_PIPE_TRANSCEIVE.
pub(crate) struct PipeIo {
    pipe: Pipe,
    timeout: Duration,
}

impl Transceive for PipeIo {
    async fn transceive(&mut self, pdu: Vec<u8>, max_out: u32) -> Result<Vec<u8>, Error> {
        let req = PipeTransceiveRequest::from(IoctlBuffer::from(pdu));
        let res = tokio::time::timeout(self.timeout, self.pipe.fsctl_with_options(req, max_out))
            .await
            .map_err(|_| Error::Timeout {
                what: "SMB request",
                after: self.timeout,
            })?
            .map_err(|e| smb_error(Call::Pipe, e))?;
        Ok(res.to_vec())
    }
}

/// What the NTLM exchange told about the host.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostNames {
    /// MsvAvNbComputerName: the host's NetBIOS name.
    pub(crate) computer: Option<String>,
    /// MsvAvNbDomainName: the domain (or, for a standalone host, its own name).
    pub(crate) domain: Option<String>,
}

/// An authenticated SMB session with `\PIPE\samr` bound for NDR 2.0.
pub(crate) struct SmbSession {
    rpc: RpcChannel<PipeIo>,
    app_key: SessionKey,
    names: HostNames,
    server: String,
    _tree: Tree,
    session: Session,
    conn: Connection,
}

impl SmbSession {
    /// Connects, authenticates with NTLM as `user`, opens `\PIPE\samr` and binds SAMR.
    pub(crate) async fn open(
        ep: &Endpoint,
        user: &AccountName,
        password: &SecretString,
    ) -> Result<Self, Error> {
        let (conn, session, tap) = authenticate(ep, user, password).await?;
        match Self::after_logon(ep, password, &session, &tap).await {
            Ok((app_key, names, tree, rpc)) => Ok(Self {
                rpc,
                app_key,
                names,
                server: ep.host.clone(),
                _tree: tree,
                session,
                conn,
            }),
            Err(e) => {
                let _ = session.logoff().await;
                let _ = conn.close().await;
                Err(e)
            }
        }
    }

    /// Derives the application key, then tree connect, pipe open and bind.
    async fn after_logon(
        ep: &Endpoint,
        password: &SecretString,
        session: &Session,
        tap: &Tap,
    ) -> Result<(SessionKey, HostNames, Tree, RpcChannel<PipeIo>), Error> {
        let t = ep.request_timeout;
        let (app_key, names) = {
            let mut o = tap.lock();
            let names = session_key::challenge_names(&o.challenge)
                .map(|(computer, domain)| HostNames { computer, domain })
                .unwrap_or_default();
            let derived = session_key::ntlmv2_session_key(
                &o.challenge,
                &o.authenticate,
                password.expose_secret(),
            )
            .and_then(|key| session_key::application_key(o.dialect, &key, o.preauth_hash()));
            o.forget();
            (derived?, names)
        };
        let ipc = UncPath::ipc_share(&ep.host).map_err(|e| smb_error(Call::TreeConnect, e))?;
        let tree = within(t, "SMB tree connect", async {
            session
                .tree_connect(&ipc)
                .await
                .map_err(|e| smb_error(Call::TreeConnect, e))
        })
        .await?;
        let pipe = within(t, "opening the samr pipe", async {
            match tree.create("samr", &FileCreateArgs::make_pipe()).await {
                Ok(Resource::Pipe(p)) => Ok(p),
                Ok(_) => Err(Error::Protocol("samr is not a pipe on this host".into())),
                Err(e) => Err(smb_error(Call::OpenPipe, e)),
            }
        })
        .await?;
        let rpc = within(
            t,
            "DCE/RPC bind",
            RpcChannel::bind(PipeIo { pipe, timeout: t }, SAMR),
        )
        .await?;
        Ok((app_key, names, tree, rpc))
    }

    /// The raw DCE/RPC answers so far (tests capture golden bytes with it).
    #[cfg(test)]
    pub(crate) fn raw_answers(&self) -> &[Vec<u8>] {
        &self.rpc.answers
    }

    /// Calls a SAMR opnum with an NDR stub; returns the response stub.
    pub(crate) async fn call(&mut self, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, Error> {
        self.rpc.call(opnum, stub).await
    }

    /// The key SAMR's password buffers are encrypted with: the SMB 3 application key
    /// (the session key on SMB 2). When the `smb` crate exposes it, this is the one
    /// line to change (see [`crate::session_key`]).
    pub(crate) fn application_key(&self) -> &SessionKey {
        &self.app_key
    }

    /// The host's NetBIOS names from the NTLM challenge.
    pub(crate) fn host_names(&self) -> &HostNames {
        &self.names
    }

    /// The host name or address this session was opened to.
    pub(crate) fn server_name(&self) -> &str {
        &self.server
    }

    /// Closes the connection under the session, as a network drop would (tests).
    pub(crate) async fn testing_disconnect(&self) {
        let _ = self.conn.close().await;
    }

    /// Closes the pipe, logs off and closes the connection (best effort).
    pub(crate) async fn close(mut self) {
        let _ = self.rpc.io_mut().pipe.close().await;
        let _ = self.session.logoff().await;
        let _ = self.conn.close().await;
    }
}

/// Connects and authenticates with NTLM; returns the connection, the session and the
/// observations of the setup.
async fn authenticate(
    ep: &Endpoint,
    user: &AccountName,
    password: &SecretString,
) -> Result<(Connection, Session, Tap), Error> {
    let addr = resolve(&ep.host, ep.port)?;
    let tap = Tap::default();
    let mut transport = FrameTransport::new(ep.connect_timeout, tap.clone());
    transport.open(addr).await.map_err(|e| match e {
        smb::transport::TransportError::Timeout(after) => Error::Timeout {
            what: "connect",
            after,
        },
        other => Error::Connect {
            host: ep.host.clone(),
            port: ep.port,
            reason: other.to_string(),
        },
    })?;
    let encrypt = matches!(ep.security, TransportSecurity::EncryptionRequired);
    let config = ConnectionConfig {
        port: Some(ep.port),
        timeout: Some(ep.request_timeout),
        min_dialect: Some(if encrypt {
            Dialect::Smb030
        } else {
            Dialect::Smb021
        }),
        max_dialect: Some(Dialect::Smb0311),
        encryption_mode: if encrypt {
            EncryptionMode::Required
        } else {
            EncryptionMode::Allowed
        },
        smb2_only_negotiate: true,
        compression_enabled: false,
        disable_notifications: true,
        auth_methods: AuthMethodsConfig {
            ntlm: true,
            kerberos: false,
        },
        ..Default::default()
    };
    let t = ep.request_timeout;
    let conn = within(t, "SMB negotiate", async {
        Connection::from_transport(Box::new(transport), &ep.host, Guid::generate(), config)
            .await
            .map_err(|e| smb_error(Call::Negotiate, e))
    })
    .await?;
    let identity = sspi::AuthIdentity {
        username: sspi::Username::new(&user.user, user.domain.as_deref())
            .map_err(|e| Error::InvalidInput(format!("user name: {e}")))?,
        password: sspi::Secret::new(password.expose_secret().to_owned()),
    };
    let session = within(t, "SMB session setup", async {
        conn.authenticate(identity)
            .await
            .map_err(|e| smb_error(Call::SessionSetup, e))
    })
    .await;
    match session {
        Ok(s) => Ok((conn, s, tap)),
        Err(e) => {
            let _ = conn.close().await;
            Err(e)
        }
    }
}

/// Checks that `user`/`password` can open an SMB session on the host (session setup
/// only; no tree connect).
pub(crate) async fn logon(
    ep: &Endpoint,
    user: &AccountName,
    password: &SecretString,
) -> Result<(), Error> {
    let (conn, session, _tap) = authenticate(ep, user, password).await?;
    let _ = session.logoff().await;
    let _ = conn.close().await;
    Ok(())
}
