//! nginx: the HTTP side of booting. `server.conf` (a `server {}` block), a small
//! standalone `nginx.conf` around it, and `www/` with the chain script and each
//! machine's iPXE script; the asset mirror is served from where it is.
//!
//! Checked with nginx 1.22 (Debian 12): `nginx -t -c nginx.conf`.

use slipway_cluster::{AssetSource, Cluster};

use super::{Contents, Export, ExportError, ExportFile, Lines, Options, after_first_line, header};
use crate::urls::Urls;

/// Characters nginx config strings cannot hold as they are (`$` starts a variable).
const NOT_IN_NGINX: &[char] = &['$', '"', '\\', '{', '}', ';'];

/// Builds the nginx export.
pub(super) fn export(cluster: &Cluster, opts: &Options) -> Result<Export, ExportError> {
    let dir = super::path_text(&opts.out_dir, "the export directory", NOT_IN_NGINX)?;
    let dir = dir.trim_end_matches('/');
    if !opts.out_dir.is_absolute() {
        return Err(ExportError::BadPath {
            what: "the export directory",
            path: opts.out_dir.clone(),
            reason: "nginx needs an absolute path".into(),
        });
    }
    let urls = Urls::new(cluster);
    let net = &cluster.network;
    let mut out = Export::default();

    // www/: the chain script and each machine's script.
    let ipxe_header = header("#", cluster, opts);
    out.files.push(ExportFile {
        path: "www".into(),
        contents: Contents::Dir,
    });
    out.add_text(
        "www/boot.ipxe",
        after_first_line(&crate::ipxe::chain(&urls), &ipxe_header),
    );
    out.files.push(ExportFile {
        path: "www/ipxe".into(),
        contents: Contents::Dir,
    });
    for node in &cluster.nodes {
        let boot = crate::boot::install(cluster, node, &urls);
        let script = crate::ipxe::install(cluster, node, &boot, &urls);
        out.add_text(
            format!("www/ipxe/{}.ipxe", node.mac.dashed()),
            after_first_line(&script, &ipxe_header),
        );
    }

    // server.conf.
    let mut s = Lines::new(header("#", cluster, opts));
    s.line(format!(
        "# nginx server for {}: the URLs slipway's boot scripts use. Put it in nginx's http {{}}",
        urls.base()
    ));
    s.line("# block (e.g. include it from /etc/nginx/conf.d/), or run the nginx.conf next to it.");
    s.line("#");
    s.line(
        "# Secrets are not exported: the per-machine install configs (/config/..., with keys and",
    );
    s.line("# tokens) are served only by slipway itself, which checks the requester's address.");
    s.line("server {");
    s.line(format!("    listen {}:{};", net.server, net.http_port));
    s.line(format!(
        "    server_name {} {}.{};",
        net.server,
        super::dnsmasq::SERVER_NAME,
        cluster.cluster.domain
    ));
    s.line(format!("    root \"{dir}/www\";"));
    s.line("    default_type application/octet-stream;");
    s.blank();
    s.line("    # The chain script every iPXE loads first, and each machine's own script.");
    s.line("    location = /boot.ipxe {");
    s.line("        default_type text/plain;");
    s.line("    }");
    s.line("    location /ipxe/ {");
    s.line("        default_type text/plain;");
    s.line("    }");
    s.blank();
    s.line("    # Served by slipway only (per-machine configs with secrets; the API).");
    for path in ["/config/", "/cloud-configs/", "/api/"] {
        s.line(format!("    location {path} {{"));
        s.line("        return 404;");
        s.line("    }");
    }
    s.blank();
    match &cluster.os.assets {
        AssetSource::Mirror(mirror) => {
            let mirror = super::path_text(mirror, "the asset mirror (os.assets)", NOT_IN_NGINX)?;
            s.line("    # The OS images: the asset mirror (os.assets), in the seeds' layout,");
            s.line(format!(
                "    # e.g. /{}/flatcar_production_pxe.vmlinuz.",
                cluster.os.version
            ));
            s.line("    location / {");
            s.line(format!(
                "        root \"{}\";",
                mirror.trim_end_matches('/')
            ));
            s.line("    }");
        }
        AssetSource::Remote(url) => {
            s.line(format!(
                "    # The OS images come from {url} (os.assets), not from here."
            ));
            s.line("    location / {");
            s.line("        return 404;");
            s.line("    }");
        }
    }
    s.line("}");
    out.add_text("server.conf", s.finish());

    // nginx.conf: standalone, everything under the export directory.
    let run = format!("{dir}/run");
    let mut n = Lines::new(header("#", cluster, opts));
    n.line("# A standalone nginx for this export, for testing or for a machine without nginx of");
    n.line(format!(
        "# its own: nginx -c {dir}/nginx.conf (check: nginx -t -c {dir}/nginx.conf)."
    ));
    n.line("worker_processes 1;");
    n.line(format!("pid \"{run}/nginx.pid\";"));
    n.line(format!("error_log \"{run}/error.log\";"));
    n.line("events {");
    n.line("    worker_connections 1024;");
    n.line("}");
    n.line("http {");
    n.line("    sendfile on;");
    n.line(format!("    access_log \"{run}/access.log\";"));
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        n.line(format!("    {temp}_temp_path \"{run}/{temp}\";"));
    }
    n.line(format!("    include \"{dir}/server.conf\";"));
    n.line("}");
    out.add_text("nginx.conf", n.finish());
    out.files.push(ExportFile {
        path: "run".into(),
        contents: Contents::Dir,
    });

    out.notes.push(format!(
        "nginx must listen on {}:{} (the URLs in the boot scripts); the per-machine install configs under /config/ are served only by slipway",
        net.server, net.http_port
    ));
    if let AssetSource::Mirror(m) = &cluster.os.assets {
        out.notes.push(format!(
            "nginx serves the OS images from the asset mirror {}: it must hold {}/",
            m.display(),
            cluster.os.version
        ));
    }
    Ok(out)
}
