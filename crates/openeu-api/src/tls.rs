//! TLS to Postgres over rustls (the TLS stack the service already has through ureq), as a
//! `MakeTlsConnect` for tokio-postgres. The three verification levels are libpq's: `require`
//! encrypts without checking who answers, `verify-ca` checks the certificate chain against the
//! root certificates, `verify-full` also checks that the certificate names the host.
//!
//! Handshake failures are turned into messages that say what did not match and which setting
//! to change, because rustls' own words ("UnknownIssuer") name neither.

use std::{
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

/// How much of the server's identity is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt, but accept any certificate (libpq's `prefer` and `require`).
    Nothing,
    /// The chain must lead to a root certificate (`verify-ca`).
    Chain,
    /// The chain, and the certificate must name the host (`verify-full`).
    ChainAndHost,
}

/// Where the trusted root certificates come from (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file with one or more CA certificates, such as Supabase's `prod-ca-2021.crt`.
    File(PathBuf),
    /// `sslrootcert=system`: the public web PKI roots that ureq also trusts.
    System,
}

/// The connector handed to the pool: cheap to clone, one rustls configuration for every
/// connection.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    verify: Verify,
    roots: Option<Roots>,
}

impl RustlsConnect {
    /// A connector that verifies `verify` against `roots` (required unless `verify` is
    /// `Nothing`). The error names the file and the fix.
    pub fn new(verify: Verify, roots: Option<&Roots>) -> Result<RustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Verify::Nothing => Arc::new(Unverified {
                algorithms: provider.signature_verification_algorithms,
            }),
            Verify::Chain | Verify::ChainAndHost => {
                let Some(roots) = roots else {
                    return Err("sslmode=verify-ca and verify-full need sslrootcert: the path of the CA certificate (PEM), such as Supabase's prod-ca-2021.crt, or sslrootcert=system for the public web PKI".to_owned());
                };
                let store = root_store(roots)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| format!("sslrootcert: {e}"))?;
                if verify == Verify::Chain {
                    Arc::new(ChainOnly { webpki })
                } else {
                    webpki
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsConnect {
            config: Arc::new(config),
            verify,
            roots: roots.cloned(),
        })
    }
}

fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::File(path) => {
            let certs = read_pem(path)?;
            let (added, _ignored) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {}: no usable CA certificate in it (expected PEM \"BEGIN CERTIFICATE\" blocks)",
                    path.display()
                ));
            }
        }
    }
    Ok(store)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("sslrootcert {}: cannot read it: {e}", path.display()))?;
    CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "sslrootcert {}: not a PEM certificate file: {e}",
                path.display()
            )
        })
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<Connect> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{domain:?} is not a host name TLS can check"),
            )
        })?;
        Ok(Connect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
            host: domain.to_owned(),
            verify: self.verify,
            roots: self.roots.clone(),
        })
    }
}

/// One connection's handshake.
pub struct Connect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    host: String,
    verify: Verify,
    roots: Option<Roots>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Connect {
                connector,
                name,
                host,
                verify,
                roots,
            } = self;
            match connector.connect(name, stream).await {
                Ok(tls) => Ok(Stream(tls)),
                Err(err) => Err(explain(err, &host, verify, roots.as_ref())),
            }
        })
    }
}

/// A handshake error in words that name the mismatch and the setting to change.
fn explain(err: io::Error, host: &str, verify: Verify, roots: Option<&Roots>) -> io::Error {
    let roots = match roots {
        Some(Roots::File(path)) => format!("sslrootcert={}", path.display()),
        Some(Roots::System) => "sslrootcert=system".to_owned(),
        None => "no sslrootcert".to_owned(),
    };
    let certificate = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(c) => Some(c.clone()),
            _ => None,
        });
    let message = match certificate {
        Some(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            format!(
                "TLS: the server's certificate is not valid for the host name {host:?} (sslmode=verify-full checks it); connect with the name the certificate carries, or use sslmode=verify-ca to check the chain only"
            )
        }
        Some(CertificateError::UnknownIssuer | CertificateError::BadSignature) => format!(
            "TLS: the server's certificate for {host:?} is not signed by a trusted CA ({roots}); point sslrootcert at the CA that issued it (Supabase: the project's CA certificate from the dashboard)"
        ),
        Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            format!("TLS: the server's certificate for {host:?} has expired")
        }
        Some(other) => format!(
            "TLS: the server's certificate for {host:?} was refused ({other:?}, {roots}, verification {verify:?})"
        ),
        None => format!("TLS handshake with {host:?} failed: {err}"),
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// An established TLS connection.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Stream<S> {
    /// No `tls-server-end-point` binding: it needs the hash named by the certificate's signature
    /// algorithm, and SCRAM works without it (tokio-postgres' default is to prefer binding).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// `require`: any certificate, but the handshake's signatures are still checked, so the
/// session is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's checks, except the host name. webpki checks the chain before the
/// name, so a name mismatch means the chain was good.
#[derive(Debug)]
struct ChainOnly {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
