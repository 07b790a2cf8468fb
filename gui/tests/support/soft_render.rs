//! A software rasteriser for egui's triangles, so image snapshots need no GPU and no wgpu build.
//! Teaches: what a GPU does for a GUI — interpolate colours and texture coordinates across
//! triangles and blend them over what is already there (premultiplied alpha, gamma space).

use std::collections::HashMap;

use egui::epaint::{ClippedPrimitive, ImageData, ImageDelta, Primitive, TextureId, Vertex};
use egui::{Color32, TextureFilter, TexturesDelta};
use egui_kittest::TestRenderer;

struct Texture {
    size: [usize; 2],
    pixels: Vec<Color32>,
    linear: bool,
}

impl Texture {
    fn texel(&self, x: isize, y: isize) -> [f32; 4] {
        let x = x.clamp(0, self.size[0] as isize - 1) as usize;
        let y = y.clamp(0, self.size[1] as isize - 1) as usize;
        let c = self.pixels[y * self.size[0] + x];
        [c.r() as f32, c.g() as f32, c.b() as f32, c.a() as f32]
    }

    /// Samples at normalised coordinates (bilinear for linear textures, like the GPU).
    fn sample(&self, u: f32, v: f32) -> [f32; 4] {
        let x = u * self.size[0] as f32 - 0.5;
        let y = v * self.size[1] as f32 - 0.5;
        if !self.linear {
            return self.texel(x.round() as isize, y.round() as isize);
        }
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        let (a, b) = (self.texel(x0, y0), self.texel(x0 + 1, y0));
        let (c, d) = (self.texel(x0, y0 + 1), self.texel(x0 + 1, y0 + 1));
        let mut out = [0.0; 4];
        for i in 0..4 {
            let top = a[i] + (b[i] - a[i]) * fx;
            let bottom = c[i] + (d[i] - c[i]) * fx;
            out[i] = top + (bottom - top) * fy;
        }
        out
    }
}

/// Renders egui output into an RGBA image on the CPU.
#[derive(Default)]
pub struct SoftRenderer {
    textures: HashMap<TextureId, Texture>,
}

impl SoftRenderer {
    fn apply(&mut self, id: TextureId, d: &ImageDelta) {
        let ImageData::Color(img) = &d.image;
        let linear = d.options.magnification == TextureFilter::Linear;
        match d.pos {
            None => {
                self.textures.insert(
                    id,
                    Texture {
                        size: img.size,
                        pixels: img.pixels.clone(),
                        linear,
                    },
                );
            }
            Some([px, py]) => {
                if let Some(t) = self.textures.get_mut(&id) {
                    for y in 0..img.size[1] {
                        for x in 0..img.size[0] {
                            let (tx, ty) = (px + x, py + y);
                            if tx < t.size[0] && ty < t.size[1] {
                                t.pixels[ty * t.size[0] + tx] = img.pixels[y * img.size[0] + x];
                            }
                        }
                    }
                }
            }
        }
    }
}

impl TestRenderer for SoftRenderer {
    fn handle_delta(&mut self, delta: &mut TexturesDelta) {
        for (id, deltas) in std::mem::take(&mut delta.set) {
            for d in deltas {
                self.apply(id, &d);
            }
        }
        for id in std::mem::take(&mut delta.free) {
            self.textures.remove(&id);
        }
    }

    fn render(
        &mut self,
        ctx: &egui::Context,
        output: &egui::FullOutput,
    ) -> Result<image::RgbaImage, String> {
        let ppp = ctx.pixels_per_point();
        let size = ctx.content_rect().size() * ppp;
        let (w, h) = (size.x.round() as usize, size.y.round() as usize);
        let mut canvas = Canvas {
            w,
            h,
            px: vec![[0.0, 0.0, 0.0, 255.0]; w * h],
        };
        let prims = ctx.tessellate(output.shapes.clone(), ppp);
        for ClippedPrimitive {
            clip_rect,
            primitive,
        } in &prims
        {
            let Primitive::Mesh(mesh) = primitive else {
                continue;
            };
            let Some(tex) = self.textures.get(&mesh.texture_id) else {
                continue;
            };
            let clip = [
                (clip_rect.min.x * ppp).round().max(0.0) as usize,
                (clip_rect.min.y * ppp).round().max(0.0) as usize,
                ((clip_rect.max.x * ppp).round().max(0.0) as usize).min(w),
                ((clip_rect.max.y * ppp).round().max(0.0) as usize).min(h),
            ];
            for tri in mesh.indices.chunks_exact(3) {
                let v = [
                    &mesh.vertices[tri[0] as usize],
                    &mesh.vertices[tri[1] as usize],
                    &mesh.vertices[tri[2] as usize],
                ];
                canvas.triangle(v, ppp, clip, tex);
            }
        }
        let bytes: Vec<u8> = canvas
            .px
            .iter()
            .flat_map(|p| p.map(|c| c.round().clamp(0.0, 255.0) as u8))
            .collect();
        image::RgbaImage::from_raw(w as u32, h as u32, bytes).ok_or("bad canvas size".into())
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[f32; 4]>,
}

/// Twice the signed area of (a, b, p): which side of the edge a→b the point p is on.
fn edge(a: [f32; 2], b: [f32; 2], p: [f32; 2]) -> f32 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

/// Top-left rule: a pixel centre exactly on a shared edge belongs to one triangle only.
fn top_left(a: [f32; 2], b: [f32; 2]) -> bool {
    (a[1] == b[1] && b[0] < a[0]) || b[1] < a[1]
}

impl Canvas {
    fn triangle(&mut self, v: [&Vertex; 3], ppp: f32, clip: [usize; 4], tex: &Texture) {
        let mut p = v.map(|v| [v.pos.x * ppp, v.pos.y * ppp]);
        let mut v = v;
        let mut area = edge(p[0], p[1], p[2]);
        if area == 0.0 {
            return;
        }
        if area < 0.0 {
            p.swap(1, 2);
            v.swap(1, 2);
            area = -area;
        }
        let min_x = p
            .iter()
            .map(|q| q[0])
            .fold(f32::MAX, f32::min)
            .floor()
            .max(0.0) as usize;
        let max_x = p
            .iter()
            .map(|q| q[0])
            .fold(f32::MIN, f32::max)
            .ceil()
            .max(0.0) as usize;
        let min_y = p
            .iter()
            .map(|q| q[1])
            .fold(f32::MAX, f32::min)
            .floor()
            .max(0.0) as usize;
        let max_y = p
            .iter()
            .map(|q| q[1])
            .fold(f32::MIN, f32::max)
            .ceil()
            .max(0.0) as usize;
        let (x0, x1) = (min_x.max(clip[0]), max_x.min(clip[2]));
        let (y0, y1) = (min_y.max(clip[1]), max_y.min(clip[3]));
        let edges = [(1, 2), (2, 0), (0, 1)];
        let bias = edges.map(|(a, b)| top_left(p[a], p[b]));
        let colors = v.map(|v| {
            let c = v.color;
            [c.r() as f32, c.g() as f32, c.b() as f32, c.a() as f32]
        });
        for y in y0..y1 {
            for x in x0..x1 {
                let c = [x as f32 + 0.5, y as f32 + 0.5];
                let mut w = [0.0f32; 3];
                let mut inside = true;
                for (i, (a, b)) in edges.iter().enumerate() {
                    w[i] = edge(p[*a], p[*b], c);
                    if w[i] < 0.0 || (w[i] == 0.0 && !bias[i]) {
                        inside = false;
                        break;
                    }
                }
                if !inside {
                    continue;
                }
                let l = w.map(|x| x / area);
                let u = l[0] * v[0].uv.x + l[1] * v[1].uv.x + l[2] * v[2].uv.x;
                let t = l[0] * v[0].uv.y + l[1] * v[1].uv.y + l[2] * v[2].uv.y;
                let texel = tex.sample(u, t);
                let dst = &mut self.px[y * self.w + x];
                let mut src = [0.0f32; 4];
                for (i, s) in src.iter_mut().enumerate() {
                    let col = l[0] * colors[0][i] + l[1] * colors[1][i] + l[2] * colors[2][i];
                    *s = col * texel[i] / 255.0;
                }
                let keep = 1.0 - src[3] / 255.0;
                for i in 0..4 {
                    dst[i] = src[i] + dst[i] * keep;
                }
            }
        }
        debug_assert!(self.h > 0);
    }
}
