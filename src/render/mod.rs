//! Turning the view model into documents. Renderers read only the view
//! model, so every format shows the same numbers.

pub mod html;
pub mod pdf;
