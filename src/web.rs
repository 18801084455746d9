//! JavaScript bindings of the browser demo (`web/`): [`WebSearch`] wraps a [`Demo`] on the
//! browser's WebGPU device. Every method returns JSON text; `run` returns a Promise and never
//! blocks the page (readbacks are awaited).

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::demo::{Demo, DemoConfig};
use crate::gpu::Gpu;

fn js_error(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A search running in the page. The demo is out of its cell while a run is in flight, so a
/// second call meanwhile gets an error instead of interleaving GPU work.
#[wasm_bindgen]
pub struct WebSearch {
    demo: Rc<RefCell<Option<Demo>>>,
    info: String,
}

const BUSY: &str = "a run is in progress; await it first";

#[wasm_bindgen]
impl WebSearch {
    /// Opens the WebGPU device and builds the search from a `DemoConfig` JSON (any key may be
    /// left out). Rejects with a readable message: no WebGPU adapter, a bad setting.
    pub async fn create(config_json: String) -> Result<WebSearch, JsValue> {
        let config = DemoConfig::from_json(&config_json).map_err(js_error)?;
        let gpu = Gpu::new_async().await.map_err(js_error)?;
        let demo = Demo::new(&gpu, config).map_err(js_error)?;
        let info = serde_json::to_string(demo.info()).map_err(js_error)?;
        Ok(WebSearch { demo: Rc::new(RefCell::new(Some(demo))), info })
    }

    /// The adapter, operations, cell shape, settings, data and parameter count (JSON).
    pub fn info(&self) -> String {
        self.info.clone()
    }

    /// Runs `n` more steps (ENAS: shared-weight steps or controller updates, see `Demo::run`)
    /// and resolves to the `Snapshot` JSON of what changed.
    pub fn run(&self, n: u32) -> js_sys::Promise {
        let demo = self.demo.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut running = demo.borrow_mut().take().ok_or_else(|| js_error(BUSY))?;
            let snapshot = running.run(n as usize).await;
            *demo.borrow_mut() = Some(running);
            Ok(serde_json::to_string(&snapshot.map_err(js_error)?).map_err(js_error)?.into())
        })
    }

    /// Every softmax(alpha) read back so far, with its step (JSON array).
    pub fn alpha_history(&self) -> Result<String, JsValue> {
        let demo = self.demo.borrow();
        serde_json::to_string(demo.as_ref().ok_or_else(|| js_error(BUSY))?.alpha_history()).map_err(js_error)
    }
}
