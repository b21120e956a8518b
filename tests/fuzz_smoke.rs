//! A bounded fuzz run on the stable toolchain (CI cannot fetch nightly for cargo-fuzz): the
//! three fuzz targets' logic (`fuzz/logic.rs`, shared with the cargo-fuzz targets) over a
//! deterministic stream of inputs: seeds, structure-aware mutations of them, and random bytes.
//! `MCP_AUTH_FUZZ_ITERS` sets the count per target (default 20,000).

#[path = "../fuzz/logic.rs"]
mod logic;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"1e309",
    b"-0",
    b"\"name\"",
    b"\"method\"",
    b"\"params\"",
    b"\"tools/call\"",
    b".",
    b"=",
    b"Bearer ",
    b"bearer\t",
    b" ",
    b"\r\n",
    b"\xff",
    b"\xc3\xa9",
    b"%00",
    b"&access_token=x",
    b"eyJ",
    b"AAAA",
    b"alg",
    b"none",
    b"\"crit\"",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below(8).min(v.len() - i);
                v.drain(i..i + n);
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, piece.iter().copied());
            }
            3 if !v.is_empty() => {
                // Duplicate a slice (duplicate keys, repeated segments).
                let i = rng.below(v.len());
                let n = rng.below(24).min(v.len() - i);
                let piece: Vec<u8> = v[i..i + n].to_vec();
                let j = rng.below(v.len() + 1);
                v.splice(j..j, piece);
            }
            4 => v.truncate(rng.below(v.len() + 1)),
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn run(name: &str, seeds: &[Vec<u8>], target: fn(&[u8])) {
    let iters: usize = std::env::var("MCP_AUTH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    for s in seeds {
        target(s);
    }
    for i in 0..iters {
        let input = if i % 10 == 9 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        target(&input);
    }
    eprintln!("{name}: {} inputs without a failure", iters + seeds.len());
}

#[test]
fn header_parsing_survives_mutated_and_random_headers() {
    let seeds: Vec<Vec<u8>> = [
        &b"\x07Bearer fuzz-token-0123456789abcdefa=b"[..],
        b"\x00fuzz-key-0123456789abcdef",
        b"\x09Bearer  abc.def~+/=access_token=1",
        b"\x05Basic dXNlcjpwYXNz",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    run("header", &seeds, logic::header);
}

#[test]
fn jwt_front_end_survives_mutated_tokens() {
    let valid = logic::valid_jwt();
    let parts: Vec<&str> = valid.split('.').collect();
    let seeds: Vec<Vec<u8>> = vec![
        valid.clone().into_bytes(),
        format!("{}.{}.", parts[0], parts[1]).into_bytes(),
        format!("eyJhbGciOiJub25lIn0.{}.", parts[1]).into_bytes(),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]).into_bytes(),
        b"a.b.c".to_vec(),
    ];
    run("jwt_front", &seeds, logic::jwt_front);
}

#[test]
fn operation_extractor_survives_mutated_json_rpc() {
    let seeds: Vec<Vec<u8>> = [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data","arguments":{"key":"k"}}}"#[..],
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"result":{}}]"#,
        br#"{"params":{"uri":"file:///x"},"method":"resources/read","id":"x","jsonrpc":"2.0"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"n\u0061me":"p"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{x}"}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["file:///a","file:///b"]}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"skills/get","params":{"uri":"skill://s/SKILL.md"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"resources/directory/read","params":{"uri":"file:///d/","cursor":"c"}}"#,
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    run("operations", &seeds, logic::operations);
}
