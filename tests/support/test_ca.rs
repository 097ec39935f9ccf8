//! A throwaway CA made with OpenSSL (`openssl req` / `openssl ca`): client and
//! server certificates with chosen dates, revocation and CRLs, so the mutual-TLS
//! tests use certificates sceau had no hand in.

use std::path::{Path, PathBuf};

use super::tools;

pub struct TestCa {
    pub dir: PathBuf,
    pub name: String,
}

/// A certificate and its key, PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    /// Certificate then key, one PEM text (what reqwest's `Identity::from_pem` reads).
    pub fn identity_pem(&self) -> Vec<u8> {
        let mut pem = std::fs::read(&self.certificate).unwrap();
        pem.extend(std::fs::read(&self.key).unwrap());
        pem
    }

    pub fn certificate_pem(&self) -> String {
        std::fs::read_to_string(&self.certificate).unwrap()
    }

    /// The DER of the certificate.
    pub fn der(&self) -> Vec<u8> {
        let pem = std::fs::read(&self.certificate).unwrap();
        let (_, der) = der::pem::decode_vec(&pem).unwrap();
        der
    }
}

fn openssl(args: &[&str]) {
    let output = tools::run(&tools::tool("openssl"), args);
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestCa {
    /// A self-signed P-256 CA in `parent/name`.
    pub fn new(parent: &Path, name: &str) -> Self {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("newcerts")).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            dir.join("openssl.cnf"),
            format!(
                r#"[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
policy = any_name
email_in_dn = no
unique_subject = no
default_days = 30
default_crl_days = 7
crl_extensions = crl_ext
[ any_name ]
commonName = supplied
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ crl_ext ]
authorityKeyIdentifier = keyid
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        let key = dir.join("ca.key");
        let certificate = dir.join("ca.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            certificate.to_str().unwrap(),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        Self {
            dir,
            name: name.to_owned(),
        }
    }

    pub fn certificate(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn config(&self) -> String {
        self.dir.join("openssl.cnf").display().to_string()
    }

    /// A client (or, with `server`, a server) certificate for `name`; `dates`
    /// overrides the validity (`YYYYMMDDHHMMSSZ` start and end).
    pub fn issue(&self, name: &str, server: bool, dates: Option<(&str, &str)>) -> Issued {
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let certificate = self.dir.join(format!("{name}.pem"));
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
            &format!("/CN={name}"),
        ]);
        let config = self.config();
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            &config,
            "-extensions",
            if server { "server_ext" } else { "client_ext" },
            "-in",
            csr.to_str().unwrap(),
            "-out",
            certificate.to_str().unwrap(),
        ];
        if let Some((start, end)) = dates {
            args.extend_from_slice(&["-startdate", start, "-enddate", end]);
        }
        openssl(&args);
        Issued { certificate, key }
    }

    pub fn revoke(&self, issued: &Issued) {
        openssl(&[
            "ca",
            "-config",
            &self.config(),
            "-revoke",
            issued.certificate.to_str().unwrap(),
            "-crl_reason",
            "keyCompromise",
        ]);
    }

    /// Writes the CRL (PEM) to `path`, replacing it atomically.
    pub fn write_crl(&self, path: &Path) {
        self.write_crl_with(path, &[]);
    }

    /// Writes a CRL whose nextUpdate has passed (it was due yesterday).
    pub fn write_stale_crl(&self, path: &Path) {
        let day = |offset: i64| {
            (time::OffsetDateTime::now_utc() + time::Duration::days(offset))
                .format(time::macros::format_description!(
                    "[year][month][day][hour][minute][second]Z"
                ))
                .unwrap()
        };
        self.write_crl_with(
            path,
            &["-crl_lastupdate", &day(-2), "-crl_nextupdate", &day(-1)],
        );
    }

    fn write_crl_with(&self, path: &Path, extra: &[&str]) {
        let temp = path.with_extension("tmp");
        let config = self.config();
        let mut args = vec![
            "ca",
            "-config",
            &config,
            "-gencrl",
            "-out",
            temp.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        openssl(&args);
        std::fs::rename(temp, path).unwrap();
    }
}

/// What a mutual-TLS listener needs in tests: a server CA and its server
/// certificate, a client CA with its CRL, and the listener settings.
pub struct MtlsPki {
    pub clients: TestCa,
    pub crl: PathBuf,
    pub tls: sceau::config::TlsSettings,
    pub server_ca: PathBuf,
}

impl MtlsPki {
    pub fn new(dir: &Path, crl_refresh_secs: u64) -> Self {
        let servers = TestCa::new(dir, "server-ca");
        let server = servers.issue("sceau-server", true, None);
        let clients = TestCa::new(dir, "client-ca");
        let crl = dir.join("client-ca.crl.pem");
        clients.write_crl(&crl);
        let tls = sceau::config::TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            certificate_file: server.certificate.clone(),
            key_file: server.key.clone(),
            client_ca_files: vec![clients.certificate()],
            client_crl_files: vec![crl.clone()],
            crl_refresh_secs,
        };
        Self {
            clients,
            crl,
            tls,
            server_ca: servers.certificate(),
        }
    }

    /// An HTTPS client trusting the server CA, presenting `identity` if given.
    pub fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        let root =
            reqwest::Certificate::from_pem(&std::fs::read(&self.server_ca).unwrap()).unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(root)
            .timeout(std::time::Duration::from_secs(10));
        if let Some(identity) = identity {
            builder =
                builder.identity(reqwest::Identity::from_pem(&identity.identity_pem()).unwrap());
        }
        builder.build().unwrap()
    }
}
