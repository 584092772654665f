//! The server side of the control socket, run by `serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use super::{Request, Response, execute};
use crate::services::Services;
use crate::shutdown::Shutdown;

/// Binds `control.sock` in the store's folder, owner-only, and answers requests until
/// shutdown. A stale socket file from a killed server is replaced.
pub async fn serve_socket(services: Services, mut shutdown: Shutdown) -> std::io::Result<PathBuf> {
    let path = crate::store::Store::socket_path(&services.config.store.path);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let socket_path = path.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let services = services.clone();
                    tokio::spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut reader = BufReader::new(read);
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.is_err() {
                            return;
                        }
                        let response = match serde_json::from_str::<Request>(&line) {
                            Ok(request) => match execute(&services, request).await {
                                Ok(v) => match services.store.flush().await {
                                    Ok(()) => Response::Ok(v),
                                    Err(e) => Response::Error(e.to_string()),
                                },
                                Err(e) => Response::Error(e.to_string()),
                            },
                            Err(e) => Response::Error(format!(
                                "the server does not understand this request ({e}); \
                                 is the command from the same mailgate version?"
                            )),
                        };
                        if let Ok(mut bytes) = serde_json::to_vec(&response) {
                            bytes.push(b'\n');
                            let _ = write.write_all(&bytes).await;
                        }
                    });
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(socket_path)
}
