//! The S3 client against a real S3 server (moto): an archive streamed from a node over SSH
//! straight into a multipart upload, read back streaming; an abandoned upload leaves nothing.

use pvedr::retry::Retry;
use pvedr::s3::{Bucket, MultipartUpload};
use pvedr::transport::{RemoteCommand, Ssh, SshOptions, Transport};
use pvedr_testkit::s3::Moto;
use pvedr_testkit::{SimNode, Sshd};

fn bucket(moto: &Moto, name: &str) -> Bucket {
    moto.create_versioned_bucket(name);
    crate::bucket_at(moto.endpoint(), name)
}

const MIB: usize = 1 << 20;

#[test]
fn a_node_command_streams_into_a_multipart_upload() {
    let moto = Moto::start();
    let b = bucket(&moto, "offsite");
    let sim = SimNode::empty();
    let sshd = Sshd::start(&sim);
    let mut o = SshOptions::new("127.0.0.1");
    o.port = sshd.port();
    o.identity = Some(sshd.client_key());
    o.known_hosts = Some(sshd.known_hosts());
    let t = Ssh::new(o);
    // 12 MiB of varied bytes: three parts of 5 MiB (the last one short).
    let cmd = RemoteCommand::read(["sh", "-c", "seq 1 2000000 | head -c 12582912"]);
    let mut up = MultipartUpload::start(
        &b,
        "pve1/100/a.vma.zst",
        5 * MIB,
        &[("sha256", "x")],
        Retry::default(),
    )
    .unwrap();
    let r = t.exec_stream(&cmd, &mut up).unwrap();
    assert!(r.success(), "{}", r.stderr);
    let (version, size) = up.finish().unwrap();
    assert_eq!(size, 12 * MIB as u64);
    assert_ne!(
        version, "null",
        "a versioned bucket gives the new object a version"
    );
    let head = b
        .head_object("pve1/100/a.vma.zst")
        .unwrap()
        .expect("the object");
    assert_eq!(head.size, Some(12 * MIB as u64));
    let mut back = Vec::new();
    b.get_to("pve1/100/a.vma.zst", None, &mut back).unwrap();
    let mut expect = Vec::new();
    t.exec_stream(&cmd, &mut expect).unwrap();
    assert!(
        back == expect,
        "the object is byte for byte what the node sent"
    );
    assert!(b.list_uploads("pve1/").unwrap().is_empty());
}

#[test]
fn an_abandoned_upload_is_aborted_and_leaves_no_object() {
    let moto = Moto::start();
    let b = bucket(&moto, "offsite");
    {
        let mut up =
            MultipartUpload::start(&b, "half.vma", 5 * MIB, &[], Retry::default()).unwrap();
        std::io::Write::write_all(&mut up, &vec![7u8; 6 * MIB]).unwrap();
        // Dropped without finish: an error or a signal on the way.
    }
    assert!(b.head_object("half.vma").unwrap().is_none());
    assert!(
        b.list_uploads("").unwrap().is_empty(),
        "the upload was aborted"
    );
    // What S3 said comes through.
    let err = b.get("nope", None, 10).unwrap_err().to_string();
    assert!(err.contains("NoSuchKey"), "{err}");
    assert!(b.get("half.vma", None, 1).is_err());
}
