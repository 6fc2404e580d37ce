//! bitrix
