//! Remote write 1.0's request: prompb's messages (the subset it sends, derived with prost:
//! no build script, no protoc), and a snapshot encoded as one snappy-compressed request.

use bytes::Bytes;
use prost::Message;

use super::families::{Families, Kind};

/// prompb's messages, the subset remote write 1.0 sends.
pub mod messages {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// 1 counter, 2 gauge, 3 histogram.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
    }
}

/// One request's body, and how many samples it carries.
pub struct Batch {
    pub body: Bytes,
    pub samples: u64,
}

/// The snapshot as one request: every series with one sample, stamped now.
pub fn encode(families: &Families, common: &[(String, String)], now_ms: i64) -> Batch {
    let mut request = messages::WriteRequest::default();
    let mut one = |name: String, own: &[(String, String)], le: Option<&str>, value: f64| {
        let mut labels: Vec<messages::Label> = common
            .iter()
            .chain(own)
            // Masked where they were made (`labels`, `build`).
            .map(|(k, v)| messages::Label {
                name: k.clone(),
                value: v.clone(),
            })
            .chain(le.map(|le| messages::Label {
                name: "le".into(),
                value: le.into(),
            }))
            .chain([messages::Label {
                name: "__name__".into(),
                value: name,
            }])
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        request.timeseries.push(messages::TimeSeries {
            labels,
            samples: vec![messages::Sample {
                value,
                timestamp: now_ms,
            }],
        });
    };
    let mut metadata = Vec::new();
    for family in &families.families {
        let name = &family.name;
        let kind = match family.kind {
            Kind::Counter => 1,
            Kind::Gauge => 2,
            Kind::Histogram => 3,
        };
        metadata.push(messages::MetricMetadata {
            r#type: kind,
            metric_family_name: name.clone(),
            help: family.help.clone(),
        });
        family.each_sample(|name, own, le, value| one(name.to_string(), own, le, value));
    }
    request.metadata = metadata;
    let samples = request.timeseries.len() as u64;
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("a request under snappy's 4 GiB limit");
    Batch {
        body: body.into(),
        samples,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_request_decodes_to_sorted_labels_and_one_sample_a_series() {
        let mut totals = crate::metrics::Totals::default();
        totals.counts.requests = 42;
        totals.rtt.record_us(300);
        let families = super::super::build::families(&totals, 3, &[], 1.0, false);
        let common = vec![("scenario".to_string(), "s".to_string())];
        let batch = encode(&families, &common, 1);
        let raw = snap::raw::Decoder::new().decompress_vec(&batch.body).unwrap();
        let request = messages::WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.timeseries.len() as u64, batch.samples);
        assert_eq!(batch.samples, families.samples());
        let requests = request
            .timeseries
            .iter()
            .find(|t| t.labels.iter().any(|l| l.value == "wsstorm_requests_total"))
            .unwrap();
        assert_eq!(requests.samples[0].value, 42.0);
        for t in &request.timeseries {
            assert!(
                t.labels.windows(2).all(|w| w[0].name < w[1].name),
                "{:?}",
                t.labels
            );
        }
    }
}
