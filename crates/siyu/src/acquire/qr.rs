//! QR codes for tracking links and cards, as SVG (for the console and print) and PNG (for
//! chat tools and printers that want a bitmap).

use qrcode::{Color, EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text is too long for a QR code")]
    TooLong,
    #[error("PNG encoding: {0}")]
    Png(String),
    #[error("the image is not a PNG or JPEG that can be read: {0}")]
    Image(String),
    #[error("no QR code was found in the image")]
    NotFound,
}

/// The largest picture read, per side: WeCom's are a few hundred pixels; a bigger one is not a
/// contact-way QR and would cost a core to decode.
const MAX_SIDE: u32 = 4096;

/// An image's pixels as 8-bit grey, row by row: (width, height, pixels).
fn grey(image: &[u8]) -> Result<(usize, usize, Vec<u8>), QrError> {
    let bad = |e: &dyn std::fmt::Display| QrError::Image(e.to_string());
    if image.starts_with(b"\x89PNG") {
        let mut d = png::Decoder::new(std::io::Cursor::new(image));
        // Palettes and 16-bit depths read as plain 8-bit samples.
        d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut r = d.read_info().map_err(|e| bad(&e))?;
        if r.info().width > MAX_SIDE || r.info().height > MAX_SIDE {
            return Err(QrError::Image("larger than 4096 pixels a side".into()));
        }
        let mut buf = vec![0; r.output_buffer_size().ok_or_else(|| bad(&"too large"))?];
        let f = r.next_frame(&mut buf).map_err(|e| bad(&e))?;
        let (w, h) = (f.width as usize, f.height as usize);
        let channels = f.color_type.samples();
        let px = buf[..f.buffer_size()]
            .chunks(channels)
            .map(|c| match c {
                [g] | [g, _] => *g,
                [r, g, b, ..] => {
                    ((*r as u32 * 299 + *g as u32 * 587 + *b as u32 * 114) / 1000) as u8
                }
                [] => 255,
            })
            .collect();
        Ok((w, h, px))
    } else if image.starts_with(&[0xFF, 0xD8]) {
        let opts = zune_jpeg::zune_core::options::DecoderOptions::default()
            .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::Luma);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(image, opts);
        d.decode_headers().map_err(|e| bad(&e))?;
        if d.dimensions()
            .is_none_or(|(w, h)| w > MAX_SIDE as usize || h > MAX_SIDE as usize)
        {
            return Err(QrError::Image("larger than 4096 pixels a side".into()));
        }
        let px = d.decode().map_err(|e| bad(&e))?;
        let (w, h) = d.dimensions().ok_or_else(|| bad(&"no dimensions"))?;
        Ok((w, h, px))
    } else {
        Err(QrError::Image("neither PNG nor JPEG".into()))
    }
}

/// The text of the QR code in a PNG or JPEG image (WeCom draws a live code's QR as one).
pub fn read(image: &[u8]) -> Result<String, QrError> {
    let (w, h, px) = grey(image)?;
    if w == 0 || h == 0 || px.len() < w * h {
        return Err(QrError::Image("empty image".into()));
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * w + x]);
    img.detect_grids()
        .into_iter()
        .find_map(|g| g.decode().ok().map(|(_, text)| text))
        .ok_or(QrError::NotFound)
}

fn code(text: &str) -> Result<QrCode, QrError> {
    // Level M survives a crease or a smudge on a printed card.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong)
}

/// An SVG at least `size` pixels wide, with the standard quiet zone.
pub fn svg(text: &str, size: u32) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(size, size)
        .build())
}

/// The modules of the code as rows of dark (true) / light, without quiet zone.
pub fn modules(text: &str) -> Result<(usize, Vec<bool>), QrError> {
    let c = code(text)?;
    let w = c.width();
    Ok((
        w,
        c.to_colors()
            .into_iter()
            .map(|m| m == Color::Dark)
            .collect(),
    ))
}

/// An 8-bit greyscale PNG, `scale` pixels per module, with a 4-module quiet zone.
pub fn png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let (w, dark) = modules(text)?;
    let scale = scale.clamp(1, 32) as usize;
    let side = (w + 8) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, d) in dark.iter().enumerate() {
        if !d {
            continue;
        }
        let (mx, my) = (i % w + 4, i / w + 4);
        for y in my * scale..(my + 1) * scale {
            pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| QrError::Png(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| QrError::Png(e.to_string()))?;
    writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_and_png_are_well_formed() {
        let s = svg("https://s.example.cn/t/Ab3dE9xK", 200).expect("svg");
        assert!(s.starts_with("<?xml") && s.contains("<svg") && s.contains("<path"));
        let p = png("https://s.example.cn/t/Ab3dE9xK", 4).expect("png");
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        let d = png::Decoder::new(std::io::Cursor::new(p));
        let r = d.read_info().expect("decodes");
        let (w, _) = modules("https://s.example.cn/t/Ab3dE9xK").expect("modules");
        assert_eq!(r.info().width as usize, (w + 8) * 4);
    }

    #[test]
    fn a_drawn_code_reads_back_and_other_images_are_refused() {
        let text = "https://work.weixin.qq.com/ca/cawcde3f1d9a";
        assert_eq!(read(&png(text, 3).expect("png")).expect("reads"), text);
        assert!(matches!(read(b"GIF89a"), Err(QrError::Image(_))));
        // A white square: an image, but no code in it.
        let mut blank = Vec::new();
        let mut e = png::Encoder::new(&mut blank, 40, 40);
        e.set_color(png::ColorType::Grayscale);
        let mut w = e.write_header().expect("header");
        w.write_image_data(&[255; 1600]).expect("pixels");
        w.finish().expect("png");
        assert!(matches!(read(&blank), Err(QrError::NotFound)));
    }
}
