//! The wasm32 side of the web demo: the eframe web runner, the JavaScript exports, the URL.
//! Teaches: a browser has no threads or files for us — the guest runs between frames and files arrive as bytes.

use std::cell::RefCell;

use gui::remote;
use gui::session::{EngineKind, Session};
use gui::start::StartOptions;
use gui::VmscopeApp;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The app as the page runs it: vmscope's app plus what the page reports about it.
struct WebApp {
    app: VmscopeApp,
    ctx: egui::Context,
    frames: u64,
    /// `performance.now()` (ms since the page started loading) when a guest instruction first ran.
    first_instruction_ms: Option<f64>,
}

thread_local! {
    static RUNNER: RefCell<Option<eframe::WebRunner>> = const { RefCell::new(None) };
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

impl eframe::App for WebApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        eframe::App::ui(&mut self.app, ui, frame);
        self.frames += 1;
        if self.first_instruction_ms.is_none() && self.app.session.position() > 0 {
            self.first_instruction_ms = Some(now_ms());
        }
        if std::mem::take(&mut self.app.pick_file_requested) {
            // The hidden <input type=file> of index.html; its change handler calls load_image.
            if let Some(input) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("vmscope-file"))
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                input.click();
            }
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::App::save(&mut self.app, storage);
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(&mut *self)
    }
}

/// Runs `f` on the app, if the page has started it (and it has not panicked), then asks for a
/// new frame so the page shows the result.
fn with_app<T>(f: impl FnOnce(&mut WebApp) -> T) -> Option<T> {
    RUNNER.with(|r| {
        let runner = r.borrow();
        let mut app = runner.as_ref()?.app_mut::<WebApp>()?;
        let out = f(&mut app);
        app.ctx.request_repaint();
        Some(out)
    })
}

/// Saved files (Ctrl+S, "Save snapshot") become downloads: the bytes in a Blob, a temporary
/// object URL for it, and a click on an `<a download>` that is never added to the page.
struct BrowserDownload;

impl gui::save::FileSink for BrowserDownload {
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<String, String> {
        let js = |e: JsValue| format!("offering {name} as a download: {e:?}");
        let window = web_sys::window().ok_or("no window")?;
        let document = window.document().ok_or("no document")?;
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("application/octet-stream");
        let blob =
            web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js)?;
        let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js)?;
        let link = document
            .create_element("a")
            .map_err(js)?
            .dyn_into::<web_sys::HtmlAnchorElement>()
            .map_err(|_| format!("offering {name} as a download: no <a> element"))?;
        link.set_href(&url);
        link.set_download(name);
        link.click();
        // The browser has started reading the URL once the click's task ran; free it later.
        let revoke = Closure::once_into_js(move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        });
        let _ = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
        Ok(format!(
            "your downloads as {name} ({} KiB)",
            bytes.len().div_ceil(1024)
        ))
    }

    fn verb(&self) -> &'static str {
        "Download"
    }
}

/// The session the URL asks for, or the demo with the reason when the URL is wrong.
fn first_app(query: &str) -> VmscopeApp {
    let built = StartOptions::from_query(query)
        .and_then(|o| o.builtin_image().and_then(|image| o.session(image)));
    match built {
        Ok(session) => VmscopeApp::new(session),
        Err(e) => {
            let mut app = VmscopeApp::new(Session::builtin("demo").expect("demo is built in"));
            app.error = Some(format!("the page's URL: {e}"));
            app
        }
    }
}

/// Starts the app on the canvas with id `canvas_id`. Resolves once the app exists.
#[wasm_bindgen]
pub async fn start(canvas_id: String) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let canvas = document
        .get_element_by_id(&canvas_id)
        .ok_or_else(|| format!("no element #{canvas_id}"))?
        .dyn_into::<web_sys::HtmlCanvasElement>()?;
    let location = window.location();
    let query = location.search().unwrap_or_default();
    let page_url = format!(
        "{}{}",
        location.origin().unwrap_or_default(),
        location.pathname().unwrap_or_default()
    );
    let runner = eframe::WebRunner::new();
    RUNNER.with(|r| *r.borrow_mut() = Some(runner.clone()));
    runner
        .start(
            canvas,
            eframe::WebOptions::default(),
            Box::new(move |cc| {
                let mut app = first_app(&query);
                app.page_url = Some(page_url);
                app.file_sink = Box::new(BrowserDownload);
                if let Some(s) = cc
                    .storage
                    .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                {
                    app.settings = s;
                }
                Ok(Box::new(WebApp {
                    app,
                    ctx: cc.egui_ctx.clone(),
                    frames: 0,
                    first_instruction_ms: None,
                }))
            }),
        )
        .await
}

#[derive(serde::Serialize)]
struct PageStatus {
    /// The app exists and draws.
    ready: bool,
    first_instruction_ms: Option<f64>,
    /// The Rust panic that stopped the app, if one did.
    panic: Option<String>,
    #[serde(flatten)]
    app: Option<remote::Status>,
}

/// The page's state as JSON (`vmscope.status()` parses it): see `gui::remote::Status`.
#[wasm_bindgen]
pub fn status() -> String {
    let panic = RUNNER.with(|r| {
        r.borrow()
            .as_ref()
            .and_then(|runner| runner.panic_summary())
            .map(|p| p.message())
    });
    let app = with_app(|w| (remote::status(&w.app, w.frames), w.first_instruction_ms));
    let status = PageStatus {
        ready: app.is_some(),
        first_instruction_ms: app.as_ref().and_then(|(_, t)| *t),
        panic,
        app: app.map(|(s, _)| s),
    };
    serde_json::to_string(&status).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Applies one remote command (`run`, `pause`, `step N`, `back N`, `engine bt`, `load GUEST …`);
/// throws with the reason when it cannot.
#[wasm_bindgen]
pub fn command(text: &str) -> Result<(), JsValue> {
    match with_app(|w| remote::apply(&mut w.app, text)) {
        None => Err("the app has not started".into()),
        Some(r) => r.map_err(JsValue::from),
    }
}

/// Runs a built-in guest to its end on `engine` without the UI; JSON of `gui::remote::BenchResult`.
#[wasm_bindgen]
pub fn bench(
    guest: &str,
    cmdline: &str,
    engine: &str,
    max_instructions: f64,
) -> Result<String, JsValue> {
    let kind = EngineKind::from_label(engine).ok_or_else(|| format!("no engine {engine:?}"))?;
    let max = if max_instructions.is_finite() && max_instructions > 0.0 {
        max_instructions as u64
    } else {
        u64::MAX
    };
    let r = remote::bench(guest, cmdline, kind, max, &now_ms)?;
    serde_json::to_string(&r).map_err(|e| JsValue::from(e.to_string()))
}

/// Makes a user's file (from the file picker or a drop) the guest, with an optional command
/// line; a snapshot file (magic "VMSCSNAP") is restored where it was saved instead.
#[wasm_bindgen]
pub fn load_image(name: String, bytes: Vec<u8>, cmdline: Option<String>) -> Result<(), JsValue> {
    with_app(|w| {
        w.app.open_bytes(&name, bytes, cmdline);
        match w.app.error.clone() {
            Some(e) => Err(JsValue::from(e)),
            None => Ok(()),
        }
    })
    .unwrap_or_else(|| Err("the app has not started".into()))
}
