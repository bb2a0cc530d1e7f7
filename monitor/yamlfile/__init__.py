"""yamlfile"""
