mod export_common;
use slipway_render::export::{Target, export};
#[test]
fn dump() {
    for (name, cluster) in export_common::clusters() {
        for t in Target::ALL {
            let dir = std::path::PathBuf::from(format!("/tmp/exptest/{name}/{t}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            match export(&cluster, t, &export_common::options(&dir)) {
                Ok(out) => {
                    export_common::write(&out, &dir);
                    std::fs::write(dir.join("NOTES"), out.notes.join("\n")).unwrap();
                }
                Err(e) => std::fs::write(dir.join("ERROR"), e.to_string()).unwrap(),
            }
        }
    }
}
