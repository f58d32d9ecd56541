//! Kubeconfigs with an embedded client certificate (the admin's, and each joining
//! node's short-lived join credential), built as data and written as YAML.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::issue::CertKey;

/// The user name of the admin kubeconfig (its certificate's CN).
pub const ADMIN_USER: &str = "kubernetes-admin";

#[derive(Serialize)]
struct Config<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a, ClusterEntry>>,
    contexts: Vec<Named<'a, Context<'a>>>,
    #[serde(rename = "current-context")]
    current_context: &'a str,
    preferences: serde_json::Map<String, serde_json::Value>,
    users: Vec<NamedUser<'a>>,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    item: T,
}

#[derive(Serialize)]
struct ClusterEntry {
    cluster: ClusterData,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterData {
    certificate_authority_data: String,
    server: String,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextData<'a>,
}

#[derive(Serialize)]
struct ContextData<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: UserData,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserData {
    client_certificate_data: String,
    client_key_data: String,
}

/// The admin kubeconfig for cluster `cluster_name` reached at `server`
/// (`https://host:port`): the CA certificate and the admin client certificate and
/// key embedded (base64 of their PEM, as kubeadm's `admin.conf`), user
/// [`ADMIN_USER`], context `kubernetes-admin@<cluster_name>`.
pub fn admin_kubeconfig(
    cluster_name: &str,
    server: &str,
    ca_cert_pem: &str,
    admin: &CertKey,
) -> String {
    client_kubeconfig(cluster_name, server, ca_cert_pem, ADMIN_USER, admin)
}

/// A kubeconfig for cluster `cluster_name` reached at `server` (`https://host:port`)
/// that authenticates as `user` with `client`'s certificate and key: the CA
/// certificate, the client certificate and its key embedded (base64 of their PEM),
/// one context `<user>@<cluster_name>`, which is the current one.
pub fn client_kubeconfig(
    cluster_name: &str,
    server: &str,
    ca_cert_pem: &str,
    user: &str,
    client: &CertKey,
) -> String {
    let context = format!("{user}@{cluster_name}");
    let config = Config {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: cluster_name,
            item: ClusterEntry {
                cluster: ClusterData {
                    certificate_authority_data: STANDARD.encode(ca_cert_pem),
                    server: server.to_string(),
                },
            },
        }],
        contexts: vec![Named {
            name: &context,
            item: Context {
                context: ContextData {
                    cluster: cluster_name,
                    user,
                },
            },
        }],
        current_context: &context,
        preferences: serde_json::Map::new(),
        users: vec![NamedUser {
            name: user,
            user: UserData {
                client_certificate_data: STANDARD.encode(&client.cert_pem),
                client_key_data: STANDARD.encode(&client.key_pem),
            },
        }],
    };
    // Serializing plain structs of strings to a JSON value cannot fail.
    let value = serde_json::to_value(&config).unwrap_or_default();
    slipway_cluster::emit::to_yaml(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_reads_back_as_the_data_given() -> Result<(), Box<dyn std::error::Error>> {
        let admin = CertKey {
            cert_pem: "CERT\n".into(),
            key_pem: "KEY\n".into(),
        };
        let text = admin_kubeconfig("lab", "https://10.0.0.1:6443", "CA\n", &admin);
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)?;
        let doc = docs.first().ok_or("empty")?;
        assert_eq!(doc["apiVersion"].as_str(), Some("v1"));
        assert_eq!(doc["kind"].as_str(), Some("Config"));
        assert_eq!(
            doc["current-context"].as_str(),
            Some("kubernetes-admin@lab")
        );
        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"].as_str(), Some("lab"));
        assert_eq!(
            cluster["cluster"]["server"].as_str(),
            Some("https://10.0.0.1:6443")
        );
        assert_eq!(
            cluster["cluster"]["certificate-authority-data"].as_str(),
            Some(STANDARD.encode("CA\n").as_str())
        );
        let context = &doc["contexts"][0];
        assert_eq!(context["name"].as_str(), Some("kubernetes-admin@lab"));
        assert_eq!(context["context"]["cluster"].as_str(), Some("lab"));
        assert_eq!(
            context["context"]["user"].as_str(),
            Some("kubernetes-admin")
        );
        let user = &doc["users"][0];
        assert_eq!(user["name"].as_str(), Some("kubernetes-admin"));
        assert_eq!(
            user["user"]["client-key-data"].as_str(),
            Some(STANDARD.encode("KEY\n").as_str())
        );
        assert!(doc["preferences"].as_hash().is_some_and(|h| h.is_empty()));
        Ok(())
    }
}
