//! `slipway`: bare-metal Kubernetes from one cluster file.
//!
//! A thin binary: parse the command line, run one mode, map the outcome to an exit
//! code (0 success, 1 failure to run, 2 invalid input).

mod bmc_cmd;
mod check;
mod demo_cmd;
mod export_cmd;
mod host;
mod kube_upgrade_cmd;
mod machine_cmd;
mod mirror_cmd;
mod os_update_cmd;
mod pki_cmd;
mod privileges;
mod reimage;
mod reimage_cmd;
mod render_cmd;
mod serve_cmd;
#[cfg(test)]
mod silent_fields;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for invalid input (a cluster file with errors, a bad argument).
pub const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "slipway",
    version,
    about = "Bare-metal Kubernetes from one cluster file: PXE, install, join."
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Where slipway keeps its state (PKI, leases).
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_STATE_DIR",
        default_value = "/var/lib/slipway"
    )]
    state_dir: PathBuf,
    /// Do not read local interfaces; `network.server` must then be in the file.
    #[arg(long, global = true)]
    offline: bool,
    /// Where status, events, machine and provision find the operator API.
    #[command(flatten)]
    api: machine_cmd::ApiArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate cluster files and print a summary, or the completed description.
    Check {
        /// The cluster file(s); `--output yaml|json` takes exactly one.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// What to print on success.
        #[arg(long, short, value_enum, default_value_t = Output::Summary)]
        output: Output,
        /// Report the files of the asset mirror the machines will ask for and that
        /// are missing (exit 1 if any).
        #[arg(long, conflicts_with = "output")]
        assets: bool,
    },
    /// Fill the cluster's asset mirror (`os.assets`) with the OS images and the
    /// Kubernetes sysext its nodes will ask for, each verified (OpenPGP signature or
    /// SHA-256), and with `kubernetes.serve_images` the container images (pulled by
    /// digest into `<os.assets>/oci`); resumes partial downloads, fetches nothing
    /// already verified.
    Mirror {
        /// The cluster file.
        file: PathBuf,
        /// Only this part.
        #[arg(long, value_enum)]
        only: Option<mirror_cmd::Only>,
        /// Downloads at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// List the URLs, destinations and sizes without downloading.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print one artifact of one node exactly as the machine gets it (or write them all with `--all --to DIR`).
    Render {
        /// The cluster file.
        file: PathBuf,
        /// The node: hostname or MAC.
        #[arg(long, required_unless_present = "all")]
        node: Option<String>,
        /// Which artifact.
        #[arg(long, value_enum, default_value = "ipxe")]
        artifact: render_cmd::Which,
        /// Every artifact of every node, written into `--to DIR/<hostname>/`.
        #[arg(long, requires = "to", conflicts_with_all = ["node", "artifact"])]
        all: bool,
        /// Where `--all` writes (created; files are 0600: they hold secrets).
        #[arg(long, requires = "all")]
        to: Option<PathBuf>,
        /// Use fixed fake secrets instead of the PKI (a preview; never for machines).
        #[arg(long)]
        example_secrets: bool,
    },
    /// The cluster PKI: create once, show expiry, rotate explicitly.
    Pki {
        /// The cluster file.
        file: PathBuf,
        #[command(subcommand)]
        action: pki_cmd::PkiAction,
    },
    /// Write configs for sites that keep their own DHCP, TFTP and web servers.
    Export {
        /// The cluster file.
        file: PathBuf,
        /// The directory to write into (created if needed).
        #[arg(long)]
        to: PathBuf,
        /// Which program's configuration.
        #[arg(long = "for", value_enum)]
        target: export_cmd::Target,
    },
    /// Run the network services a bare machine boots from: DHCP, TFTP, DNS and HTTP;
    /// SIGHUP reloads the cluster file, SIGINT/SIGTERM stop.
    Serve {
        /// The cluster file.
        file: PathBuf,
        #[command(flatten)]
        listen: serve_cmd::ListenArgs,
    },
    /// The machines' lives: a table (or JSON) from the running `slipway serve`.
    Status {
        /// The cluster file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every recorded event, oldest first (all nodes, or one).
    Events {
        /// The cluster file.
        file: PathBuf,
        /// Only this node (hostname or MAC).
        node: Option<String>,
    },
    /// In-place OS updates served by the running `slipway serve`: the rollout's
    /// status, halt, resume.
    OsUpdate {
        /// The cluster file.
        file: PathBuf,
        #[command(subcommand)]
        action: os_update_cmd::Action,
    },
    /// Act on one machine.
    Machine {
        /// The cluster file.
        file: PathBuf,
        #[command(subcommand)]
        action: MachineAction,
    },
    /// Power control through the machines' BMCs (IPMI or Redfish).
    Power {
        /// The cluster file.
        file: PathBuf,
        /// What to do.
        #[arg(value_enum)]
        action: bmc_cmd::PowerArg,
        #[command(flatten)]
        targets: TargetArgs,
    },
    /// Set the boot device through the machines' BMCs.
    Boot {
        /// The cluster file.
        file: PathBuf,
        /// The device.
        #[arg(value_enum)]
        device: bmc_cmd::BootArg,
        #[command(flatten)]
        targets: TargetArgs,
        /// For the next boot only (otherwise for every boot).
        #[arg(long)]
        once: bool,
        /// Ask for this firmware interface (otherwise the BMC's default).
        #[arg(long, value_enum)]
        mode: Option<bmc_cmd::ModeArg>,
    },
    /// Install machines from power-off to `ready`: re-arm the install, PXE on next
    /// boot, power cycle through the BMC, then follow each machine's lifecycle.
    Provision {
        /// The cluster file.
        file: PathBuf,
        #[command(flatten)]
        targets: TargetArgs,
        /// Ask for this firmware interface for the PXE boot.
        #[arg(long, value_enum)]
        mode: Option<bmc_cmd::ModeArg>,
        /// Give up on machines not ready after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Rolling re-image: every ready node whose install (OS version, install config)
    /// differs from what the file renders now is re-installed through its BMC, control
    /// planes one at a time, then workers in waves; a failure halts; a re-run resumes.
    Upgrade {
        /// The cluster file.
        file: PathBuf,
        /// Most workers re-imaged at once (control planes always go alone).
        #[arg(long, default_value_t = 1)]
        max_unavailable: usize,
        /// Print the plan (which nodes, why, in which waves) and change nothing.
        #[arg(long, conflicts_with_all = ["status", "abandon"])]
        dry_run: bool,
        /// Print the stored plan and each node's progress.
        #[arg(long, conflicts_with = "abandon")]
        status: bool,
        /// Forget the stored plan (no machine is touched).
        #[arg(long)]
        abandon: bool,
        /// Also re-image nodes installed before slipway recorded what they run.
        #[arg(long)]
        include_unknown: bool,
        /// Also re-image the `kubeadm init` node (its fresh install runs `kubeadm init`
        /// again: a new cluster; left alone by default).
        #[arg(long)]
        include_init_node: bool,
        /// Run before each node is re-armed (e.g. a drain), with its hostname as the
        /// last argument and SLIPWAY_NODE, SLIPWAY_NODE_IP, SLIPWAY_ROLE set; non-zero
        /// halts.
        #[arg(long)]
        pre_hook: Option<String>,
        /// Run once each node is ready again (e.g. an uncordon), as --pre-hook.
        #[arg(long)]
        post_hook: Option<String>,
        /// Kill a hook after this many seconds (it then counts as failed).
        #[arg(long, default_value_t = 600)]
        hook_timeout: u64,
        /// Give up on (and halt at) a node not ready this many seconds after its
        /// power cycle.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Ask for this firmware interface for the PXE boot.
        #[arg(long, value_enum)]
        mode: Option<bmc_cmd::ModeArg>,
    },
    /// Kubernetes version upgrade in place: the file's kubernetes.version (a patch or
    /// one minor step from --from), node by node in kubeadm's order (the first control
    /// plane `kubeadm upgrade apply`, the others and the workers `kubeadm upgrade
    /// node`), each node's script on the input of --run; a failure halts; a re-run goes on.
    KubernetesUpgrade {
        /// The cluster file (its kubernetes.version is the target).
        file: PathBuf,
        /// The version the cluster runs now (e.g. v1.31.2).
        #[arg(long)]
        from: String,
        /// Most workers upgraded at once (control planes always go alone).
        #[arg(long, default_value_t = 1)]
        max_unavailable: usize,
        /// Print the order and change nothing.
        #[arg(long, conflicts_with = "write_scripts")]
        dry_run: bool,
        /// Write each node's script, the unit and order.txt to this directory and run
        /// nothing (for your own tools).
        #[arg(long)]
        write_scripts: Option<PathBuf>,
        /// Runs a node's script, given on its standard input, through `sh -c` with the
        /// node's hostname as the last argument and SLIPWAY_NODE, SLIPWAY_NODE_IP,
        /// SLIPWAY_ROLE set.
        #[arg(long, default_value = kube_upgrade_cmd::DEFAULT_RUN)]
        run: String,
        /// Run before each node's script (e.g. a drain), as --run without input;
        /// non-zero halts.
        #[arg(long)]
        pre_hook: Option<String>,
        /// Run after each node's script succeeded (e.g. an uncordon).
        #[arg(long)]
        post_hook: Option<String>,
        /// Kill a hook after this many seconds (it then counts as failed).
        #[arg(long, default_value_t = 600)]
        hook_timeout: u64,
        /// Kill a node's --run after this many seconds (it then counts as failed).
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// The lab on this machine: QEMU VMs (BIOS and UEFI) PXE-boot through slipway,
    /// install a Flatcar-shaped test OS to disk, reboot into it and report ready.
    Demo {
        /// How many VMs (even ones BIOS, odd ones UEFI).
        #[arg(long, default_value_t = 3)]
        vms: u32,
        /// Keep the work directory (logs, serial consoles, the cluster file).
        #[arg(long)]
        keep: bool,
        /// Boot the real-init test OS: Debian's Ignition engine and systemd apply
        /// slipway's configs on first boot (about 4 minutes per VM under TCG, plus 2 to
        /// build it the first time; the default busybox OS takes under a minute).
        #[arg(long)]
        real_init: bool,
    },
    /// Convert another tool's cluster description into a slipway cluster file.
    Convert {
        /// The format of the input.
        #[arg(long, value_enum)]
        from: From,
        /// The input file.
        file: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
}

/// What `check` prints.
#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    /// A readable summary with a table of nodes.
    Summary,
    /// The completed description as YAML (a valid cluster file itself).
    Yaml,
    /// The completed description as JSON.
    Json,
}

/// Which machines a BMC command acts on.
#[derive(clap::Args)]
struct TargetArgs {
    /// Hostnames or MACs.
    nodes: Vec<String>,
    /// Every node with a `bmc`.
    #[arg(long, conflicts_with = "nodes")]
    all: bool,
    /// At most this many BMCs at once.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
}

impl TargetArgs {
    fn targets(self) -> bmc_cmd::Targets {
        bmc_cmd::Targets {
            nodes: self.nodes,
            all: self.all,
            parallel: self.parallel,
        }
    }
}

#[derive(Subcommand)]
enum MachineAction {
    /// Re-arm the install: the machine's next network boot installs it again.
    Reinstall {
        /// Hostname or MAC.
        node: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum From {
    /// sextant's cluster-desc.yml (github.com/k8sp/sextant).
    Sextant,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Check {
            files,
            assets: true,
            ..
        } => files.iter().try_fold(ExitCode::SUCCESS, |worst, f| {
            let code = mirror_cmd::check_assets(f, cli.offline)?;
            Ok::<_, anyhow::Error>(if code == ExitCode::SUCCESS {
                worst
            } else {
                code
            })
        }),
        Command::Check { files, output, .. } => check::check_all(&files, output, cli.offline),
        Command::Mirror {
            file,
            only,
            parallel,
            dry_run,
        } => mirror_cmd::mirror(&file, only, parallel, dry_run, cli.offline),
        Command::Render {
            file,
            node,
            artifact,
            all: _,
            to: Some(to),
            example_secrets,
        } if node.is_none() => {
            let _ = artifact;
            render_cmd::render_all(&file, &to, &cli.state_dir, example_secrets, cli.offline)
        }
        Command::Render {
            file,
            node,
            artifact,
            example_secrets,
            ..
        } => render_cmd::render_cmd(
            &file,
            node.as_deref().unwrap_or_default(),
            artifact,
            &cli.state_dir,
            example_secrets,
            cli.offline,
        ),
        Command::Pki { file, action } => {
            pki_cmd::pki_cmd(&file, &cli.state_dir, action, cli.offline)
        }
        Command::Export { file, to, target } => export_cmd::export(&file, &to, target, cli.offline),
        Command::Serve { file, listen } => {
            serve_cmd::serve(&file, &cli.state_dir, listen, cli.offline)
        }
        Command::Power {
            file,
            action,
            targets,
        } => bmc_cmd::power(&file, action, &targets.targets(), cli.offline),
        Command::Boot {
            file,
            device,
            targets,
            once,
            mode,
        } => bmc_cmd::boot(&file, device, once, mode, &targets.targets(), cli.offline),
        Command::Provision {
            file,
            targets,
            mode,
            timeout,
        } => bmc_cmd::provision(
            &file,
            &targets.targets(),
            mode,
            std::time::Duration::from_secs(timeout),
            &cli.state_dir,
            &cli.api,
            cli.offline,
        ),
        Command::Upgrade {
            file,
            max_unavailable,
            dry_run,
            status,
            abandon,
            include_unknown,
            include_init_node,
            pre_hook,
            post_hook,
            hook_timeout,
            timeout,
            mode,
        } => reimage_cmd::upgrade(
            &file,
            &reimage_cmd::Options {
                max_unavailable,
                dry_run,
                status,
                abandon,
                include: reimage::Include {
                    unknown: include_unknown,
                    init_node: include_init_node,
                },
                pre_hook,
                post_hook,
                hook_timeout: std::time::Duration::from_secs(hook_timeout),
                timeout: std::time::Duration::from_secs(timeout),
                mode,
            },
            &cli.state_dir,
            &cli.api,
            cli.offline,
        ),
        Command::KubernetesUpgrade {
            file,
            from,
            max_unavailable,
            dry_run,
            write_scripts,
            run,
            pre_hook,
            post_hook,
            hook_timeout,
            timeout,
        } => kube_upgrade_cmd::kubernetes_upgrade(
            &file,
            &kube_upgrade_cmd::Options {
                from,
                max_unavailable,
                dry_run,
                write_scripts,
                run,
                pre_hook,
                post_hook,
                hook_timeout: std::time::Duration::from_secs(hook_timeout),
                timeout: std::time::Duration::from_secs(timeout),
            },
            &cli.state_dir,
            cli.offline,
        ),
        Command::Status { file, json } => {
            machine_cmd::status(&file, &cli.api, &cli.state_dir, json, cli.offline)
        }
        Command::Events { file, node } => machine_cmd::events(
            &file,
            node.as_deref(),
            &cli.api,
            &cli.state_dir,
            cli.offline,
        ),
        Command::OsUpdate { file, action } => {
            os_update_cmd::os_update(&file, action, &cli.api, &cli.state_dir, cli.offline)
        }
        Command::Machine {
            file,
            action: MachineAction::Reinstall { node },
        } => machine_cmd::reinstall(&file, &node, &cli.state_dir, &cli.api, cli.offline),
        Command::Demo {
            vms,
            keep,
            real_init,
        } => demo_cmd::demo(vms, keep, real_init),
        Command::Convert {
            from: From::Sextant,
            file,
            out,
        } => check::convert_sextant(&file, out.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slipway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // hickory logs every query at info: keep it to warnings unless asked. The audit
    // lines (every secret served) show at every level.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},audit=info,hickory_server=warn,hickory_proto=warn"
        ))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
