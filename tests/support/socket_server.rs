//! A fake Socket Mode endpoint (Slack's side of the WebSocket).

use super::fake_slack::FakeSlack;
use super::{BOT_TOKEN, Db, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A fake Socket Mode endpoint: sends the given frames on the first connection
/// (only `hello` on later ones) and reports every frame the client sends back.
pub async fn fake_socket_server(
    frames: Vec<String>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/link", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let frames = if first {
                frames.clone()
            } else {
                frames[..1].to_vec()
            };
            first = false;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                for frame in frames {
                    ws.send(Message::Text(frame.into())).await.unwrap();
                }
                let _ = tx.send(serde_json::json!({"_connected": true}));
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        let _ = tx.send(serde_json::from_str(text.as_str()).unwrap_or(Value::Null));
                    }
                }
            });
        }
    });
    (url, rx)
}

/// The bot in Socket Mode (an app-level token, no signing secret) on SQLite,
/// with a fake Slack whose `apps.connections.open` names the endpoint `url`.
pub async fn socket_mode_app(url: &str) -> TestApp {
    let slack = FakeSlack::start(BOT_TOKEN).await;
    slack.set_socket_url(url);
    TestApp::spawn_with_slack(Db::Sqlite, slack, |settings| {
        settings.app_token = Some("xapp-1-test".into());
        settings.signing_secret = None;
    })
    .await
    .unwrap()
}
