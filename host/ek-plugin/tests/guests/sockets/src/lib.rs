//! Test watcher that opens a TCP connection (std::net): its component imports
//! `wasi:sockets`, which the host must refuse at load time.

wit_bindgen::generate!({ path: "../../../../../wit", world: "watcher" });

struct Plugin;

impl Guest for Plugin {
    fn on_changes(batch: ChangeBatch) -> Result<(), String> {
        let port = 1 + (batch.zxid % 1000) as u16;
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|err| err.to_string())
    }
}

export!(Plugin);
