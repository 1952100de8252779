//! VMAP 1.0 documents (IAB): an on-demand video's ad schedule, a pre-roll
//! and a mid-roll wherever a break ran live, each an `AdTagURI` pointing at
//! our VAST endpoint (so the pod is chosen, and entitlement checked, when
//! the player reaches it).

use std::io::Cursor;

use quick_xml::events::{BytesCData, BytesDecl, Event};
use quick_xml::Writer;

use super::vast::timecode;

/// One break of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Offset in the video; `None` is the pre-roll (`start`).
    pub offset_ms: Option<i64>,
    pub break_id: i64,
    pub vast_url: String,
}

pub fn document(slots: &[Slot]) -> String {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 1);
    let result = (|| -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("vmap:VMAP")
            .with_attribute(("xmlns:vmap", "http://www.iab.net/videosuite/vmap"))
            .with_attribute(("version", "1.0"))
            .write_inner_content(|w| {
                for slot in slots {
                    let offset = slot.offset_ms.map_or_else(|| "start".to_owned(), timecode);
                    let id = slot.break_id.to_string();
                    w.create_element("vmap:AdBreak")
                        .with_attribute(("timeOffset", offset.as_str()))
                        .with_attribute(("breakType", "linear"))
                        .with_attribute(("breakId", id.as_str()))
                        .write_inner_content(|w| {
                            w.create_element("vmap:AdSource")
                                .with_attribute(("id", id.as_str()))
                                .with_attribute(("allowMultipleAds", "true"))
                                .with_attribute(("followRedirects", "true"))
                                .write_inner_content(|w| {
                                    w.create_element("vmap:AdTagURI")
                                        .with_attribute(("templateType", "vast4"))
                                        .write_cdata_content(BytesCData::new(&slot.vast_url))?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        Ok(())
    })();
    result.expect("writing to memory cannot fail");
    String::from_utf8(w.into_inner().into_inner()).expect("quick-xml writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_has_a_pre_roll_and_timed_mid_rolls() {
        let doc = document(&[
            Slot {
                offset_ms: None,
                break_id: 1,
                vast_url: "http://h/ads/vast?break=1&session=a".into(),
            },
            Slot {
                offset_ms: Some(15_250),
                break_id: 2,
                vast_url: "http://h/ads/vast?break=2&session=a".into(),
            },
        ]);
        assert!(doc.contains(r#"<vmap:AdBreak timeOffset="start" breakType="linear" breakId="1">"#));
        assert!(doc.contains(r#"timeOffset="00:00:15.250""#), "{doc}");
        assert!(doc.contains("<![CDATA[http://h/ads/vast?break=2&session=a]]>"));
    }
}
