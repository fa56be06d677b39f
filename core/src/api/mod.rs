//! The data shapes of the API document: what failed (`Features`), what happened
//! (`Attempt`), what to do (`Decision`), a schedule (`Preview`) and what was learned
//! (`Stats`). snake_case JSON. `from_json` ignores fields a shape does not have (so a
//! newer writer's records still read); `from_json_strict`, used for everything a person
//! or a client sends (HTTP bodies, the config file), refuses them, naming each.

mod attempt;
pub(crate) mod check;
mod decision;
mod features;
mod json;
pub(crate) mod priority;

pub use attempt::Attempt;
pub(crate) use check::check_label;
pub use check::{MAX_ATTEMPT_NUMBER, MAX_LABEL_LEN};
pub(crate) use decision::round3;
pub use decision::{BucketStats, Decision, Guardrail, Method, Preview, Stats, TimelineEntry};
pub use features::Features;
pub use json::{from_json, from_json_strict, from_value, from_value_strict};
pub use priority::Priority;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn methods_and_guardrails_are_listed_in_the_order_metrics_index_them() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
        for (i, g) in Guardrail::ALL.iter().enumerate() {
            assert_eq!(*g as usize, i);
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str());
        }
    }

    #[test]
    fn strict_parsing_names_unknown_fields_with_their_path() {
        let err = from_json_strict::<Features>(r#"{"job_type":"a","attempt_number":1,"max_atempts":2}"#)
            .unwrap_err();
        assert_eq!(err.field(), Some("max_atempts"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_typ":"a","attempt_number":1}"#).unwrap_err();
        assert_eq!(err.field(), Some("job_typ"), "the misspelt field, not the missing one: {err}");
        #[derive(Debug, Deserialize)]
        struct Wrapper {
            #[allow(dead_code)]
            features: Features,
        }
        let err =
            from_json_strict::<Wrapper>(r#"{"features":{"job_type":"a","attempt_number":1,"tenat":"t"}}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("features.tenat"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_type":"a","#).unwrap_err();
        assert_eq!(err.field(), Some("body"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_type":"a","attempt_number":"x"}"#).unwrap_err();
        assert_eq!(err.field(), Some("attempt_number"), "{err}");
        let ok: Features =
            from_json_strict(r#"{"job_type":"a","attempt_number":1,"health":{"cpu":0.5}}"#).unwrap();
        assert_eq!(ok.health.len(), 1, "maps take any key");
        let v = serde_json::json!({"job_type": "a", "attempt_number": 1, "bogus": true});
        assert_eq!(from_value_strict::<Features>(v).unwrap_err().field(), Some("bogus"));
        // The lenient parser still reads what a newer writer added.
        assert!(from_json::<Features>(r#"{"job_type":"a","attempt_number":1,"new_field":1}"#).is_ok());
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = Features::from_json(r#"{"attempt_number": 1}"#).unwrap_err();
        assert_eq!(err.field(), Some("job_type"));
        let err = Attempt::from_json(r#"{"job_id":"j","job_type":"t","attempt_number":1}"#).unwrap_err();
        assert_eq!(err.field(), Some("success"));
    }

    #[test]
    fn wrong_type_is_named() {
        let err =
            Features::from_json(r#"{"job_type":"a","attempt_number":1,"http_status":"x"}"#).unwrap_err();
        assert_eq!(err.field(), Some("http_status"));
        let err = Features::from_json(r#"{"job_type":"a","attempt_number":-1}"#).unwrap_err();
        assert_eq!(err.field(), Some("attempt_number"));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let mut f = Features::new("a", 1);
        f.http_status = Some(700);
        assert_eq!(f.validate().unwrap_err().field(), Some("http_status"));
        let f = Features::new("a", 0);
        assert_eq!(f.validate().unwrap_err().field(), Some("attempt_number"));
        let f = Features::new("", 1);
        assert_eq!(f.validate().unwrap_err().field(), Some("job_type"));
        let mut f = Features::new("a", 1);
        f.health.insert("cpu".into(), f64::NAN);
        assert_eq!(f.validate().unwrap_err().field(), Some("health.cpu"));
        let mut f = Features::new("a", 1);
        f.since_last_failure = Some("soon".into());
        assert_eq!(f.validate().unwrap_err().field(), Some("since_last_failure"));
    }

    #[test]
    fn malformed_json_blames_the_body() {
        for text in ["{not json", "{\"job_type\": \"a\",", ""] {
            assert_eq!(Features::from_json(text).unwrap_err().field(), Some("body"), "{text}");
        }
    }

    #[test]
    fn priority_is_a_name_or_an_index() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":"Critical"}"#).unwrap();
        assert_eq!(f.priority, Some(Priority::Critical));
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":0}"#).unwrap();
        assert_eq!(f.priority, Some(Priority::Low));
        let err =
            Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":"urgent"}"#).unwrap_err();
        assert_eq!(err.field(), Some("priority"));
        let err = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":7}"#).unwrap_err();
        assert_eq!(err.field(), Some("priority"));
        assert_eq!(serde_json::to_value(Priority::High).unwrap(), "high");
    }

    #[test]
    fn error_code_accepts_numbers_and_text() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"error_code":429}"#).unwrap();
        assert_eq!(f.error_code.as_deref(), Some("429"));
    }

    #[test]
    fn text_durations_are_understood() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":2,"since_last_failure":"00:02:30"}"#)
            .unwrap();
        assert_eq!(f.since_last_failure_ms(), Some(150_000));
    }
}
