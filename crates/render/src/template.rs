//! The generic OS profile's config: a user template (minijinja, undefined variables are
//! errors) rendered with the cluster, the node and its URLs.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::json;
use slipway_cluster::{Cluster, Node};

use crate::RenderError;
use crate::urls::Urls;

/// Renders `template` (named `name` in errors) for `node`. The template sees `cluster`,
/// `node` (with `fqdn`), and `urls` (`base`, `assets`, `install_config`,
/// `installed_config`).
pub fn render(
    name: &str,
    template: &str,
    cluster: &Cluster,
    node: &Node,
    urls: &Urls,
) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let err = |e: minijinja::Error| RenderError::Template(format!("{name}: {e:#}"));
    env.add_template(name, template).map_err(err)?;
    let mut node_value =
        serde_json::to_value(node).map_err(|e| RenderError::Template(e.to_string()))?;
    node_value["fqdn"] = json!(cluster.fqdn(node));
    let ctx = json!({
        "cluster": cluster,
        "node": node_value,
        "urls": {
            "base": urls.base(),
            "assets": urls.assets(),
            "install_config": urls.install_config(node.mac),
            "installed_config": urls.installed_config(node.mac),
        },
    });
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(err)
}
