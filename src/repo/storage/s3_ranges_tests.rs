//! Unit tests of s3_ranges.rs against a scripted HTTP server on 127.0.0.1: what is
//! asked (a signed GET with the range), where the answer goes, and what a short, long,
//! failed or missing answer becomes. The real store is in tests/storage_s3.rs.

use super::remote::RemoteOptions;
use super::s3_config::S3Config;
use super::s3_uploads::S3Direct;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// Serves `answers` in order, one connection each, and sends each request's head.
fn server(answers: Vec<Vec<u8>>) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for a in answers {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = s.write_all(&a);
        }
    });
    (url, rx)
}

fn answer(status: &str, body: &[u8], length: usize) -> Vec<u8> {
    let mut a =
        format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
            .into_bytes();
    a.extend_from_slice(body);
    a
}

fn client(url: &str) -> (S3Direct, tokio::runtime::Runtime) {
    let opts = RemoteOptions {
        s3_endpoint: Some(url.to_string()),
        s3_path_style: true,
        s3_access_key: Some("id".into()),
        s3_secret_key: Some(crate::share::Password::new("secret")),
        ..Default::default()
    };
    let cfg = S3Config::resolve("bk", "repo", &opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    (S3Direct::new(&cfg).unwrap(), rt)
}

#[test]
fn a_range_is_asked_signed_and_split_into_head_and_body() {
    let body: Vec<u8> = (0..100u8).collect();
    let (url, asked) = server(vec![answer("206 Partial Content", &body, 100)]);
    let (c, rt) = client(&url);
    let (mut head, mut rest) = ([0u8; 7], [0u8; 93]);
    c.read_range(&rt, "packs/ab/x.pack", 1000, &mut head, &mut rest)
        .unwrap();
    assert_eq!(head[..], body[..7]);
    assert_eq!(rest[..], body[7..]);
    let req = asked.recv().unwrap().to_ascii_lowercase();
    assert!(req.starts_with("get /bk/repo/packs/ab/x.pack "), "{req}");
    assert!(req.contains("range: bytes=1000-1099\r\n"), "{req}");
    assert!(req.contains("authorization: aws4-hmac-sha256"), "{req}");
}

#[test]
fn a_failed_answer_is_retried_and_a_short_or_long_one_is_an_error() {
    let ok = || answer("206 Partial Content", b"abcd", 4);
    let (url, _) = server(vec![answer("503 Slow Down", b"busy", 4), ok()]);
    let (c, rt) = client(&url);
    let mut buf = [0u8; 4];
    c.read_range(&rt, "o", 0, &mut [], &mut buf).unwrap();
    assert_eq!(&buf, b"abcd", "the second attempt's bytes");
    // A body cut short of its Content-Length: the range is asked again whole.
    let (url, _) = server(vec![answer("206 Partial Content", b"xy", 4), ok()]);
    let (c, rt) = client(&url);
    let mut buf = [0u8; 4];
    c.read_range(&rt, "o", 0, &mut [], &mut buf).unwrap();
    assert_eq!(&buf, b"abcd", "the second attempt's bytes");

    let (url, _) = server(vec![answer("206 Partial Content", b"ab", 2)]);
    let (c, rt) = client(&url);
    let e = c.read_range(&rt, "o", 8, &mut [], &mut buf).unwrap_err();
    assert!(e.to_string().contains("the object ends after 2"), "{e}");

    let (url, _) = server(vec![answer("206 Partial Content", b"abcdef", 6)]);
    let (c, rt) = client(&url);
    let e = c.read_range(&rt, "o", 8, &mut [], &mut buf).unwrap_err();
    assert!(e.to_string().contains("more than the 4 bytes asked"), "{e}");

    let (url, _) = server(vec![answer("404 Not Found", b"<Error/>", 8)]);
    let (c, rt) = client(&url);
    let e = c.read_range(&rt, "o", 8, &mut [], &mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("HTTP 404"), "{e}");
}

#[test]
fn a_whole_object_answer_is_taken_only_from_its_start() {
    let (url, _) = server(vec![answer("200 OK", b"abcd", 4)]);
    let (c, rt) = client(&url);
    let mut buf = [0u8; 4];
    c.read_range(&rt, "o", 0, &mut [], &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    let (url, _) = server(vec![answer("200 OK", b"abcd", 4)]);
    let (c, rt) = client(&url);
    let e = c.read_range(&rt, "o", 2, &mut [], &mut buf).unwrap_err();
    assert!(e.to_string().contains("HTTP 200"), "{e}");
}
